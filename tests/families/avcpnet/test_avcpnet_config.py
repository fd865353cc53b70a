"""configs/avcpnet/avcpnet.py: every row of Tables 7-9 is a config argument; sweeps list them."""

from __future__ import annotations

import pytest

from jaxaffect.config_loading import ConfigError, load_config
from jaxaffect.families.avcpnet.configs import avcpnet as cfg


def test_table7_rows():
    got = {row: load_config(f"configs/avcpnet/avcpnet.py:row={row}") for row in cfg.ROWS}
    assert got["audio"].model.branches == "a" and got["visual"].model.branches == "v"
    assert (got["av"].model.caf, got["av"].model.fusion) == (False, "concat")
    assert (got["caf"].model.caf, got["caf"].model.fusion) == (True, "concat")
    assert (got["sf"].model.caf, got["sf"].model.fusion) == (True, "sum")
    assert tuple(got["sf"].loss.gammas) == (0.0, 0.0, 0.0)
    assert tuple(got["epce"].loss.gammas) == (0.5, 0.5, 0.5)
    assert got["epce"].data.name == "emotions/full_224"


def test_table8_and_9_arguments():
    c = load_config("configs/avcpnet/avcpnet.py:row=sf,fusion=gated,data=ekman6")
    assert (c.model.caf, c.model.fusion, c.data.name) == (True, "gated", "ekman6/raw_224")
    c = load_config("configs/avcpnet/avcpnet.py:gammas=0:0.3:0.5,size=demo,data=music_video")
    assert tuple(c.loss.gammas) == (0.0, 0.3, 0.5)
    assert c.data.name == "music_video/default" and c.model.swin.embed_dim == 16
    with pytest.raises(ConfigError, match="three non-negative numbers"):
        load_config("configs/avcpnet/avcpnet.py:gammas=0.5:0.5")
    with pytest.raises(ConfigError, match="needs both branches"):
        load_config("configs/avcpnet/avcpnet.py:row=audio,fusion=sum")
    with pytest.raises(ConfigError, match="row='x'"):
        load_config("configs/avcpnet/avcpnet.py:row=x")


@pytest.mark.parametrize("table,count", [("7", 18), ("8", 15), ("9", 15)])
def test_sweeps(table, count):
    runs = []
    cfg.sweep(lambda **kw: runs.append(kw["config_arg"]), f"table={table}")
    assert len(runs) == len(set(runs)) == count
    for arg in runs:
        load_config(f"configs/avcpnet/avcpnet.py:{arg}")
