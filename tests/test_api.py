"""The README's Python API example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_readme_python_api_example_runs(capsys):
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Python API"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "README.md (Python API)", "exec"), {})
    printed = capsys.readouterr().out.strip().splitlines()[-1].split()
    from jaxaffect.families.perr.erato_format import FINE_LABELS

    assert printed[0] in FINE_LABELS and 0.0 <= float(printed[1]) <= 1.0


def test_config_overrides_are_typed_and_checked():
    from jaxaffect import api
    from jaxaffect.errors import ConfigError

    c = api.config("perr/smta.py:runlocal", {"model.hidden_size": 24}, training__batch_size=4)
    assert c.model.hidden_size == 24 and c.training.batch_size == 4
    assert c.config_file.endswith("families/perr/configs/smta.py")
    with pytest.raises(ConfigError, match="no config field"):
        api.config("perr/smta.py", training__no_such_field=1)
