"""Builders with configs that leave nothing behind when a build is refused."""

from __future__ import annotations

from typing import Any

from etils import epath


class RefusedBuildCleanup:
    """A refused build of a builder with configs leaves nothing in the data_dir: TFDS removes
    its incomplete folder but not `<name>/.config/metadata.json` (the default config's name,
    written before generation) nor the empty `<name>/<config>` folders; this removes what this
    build created (only TFDS's own files)."""

    def download_and_prepare(self, *args: Any, **kwargs: Any) -> None:
        version_dir = epath.Path(self.data_path)
        common = version_dir.parent.parent
        folders = [version_dir, version_dir.parent, common / ".config", common]
        created = [f for f in folders if not f.exists()]
        try:
            super().download_and_prepare(*args, **kwargs)
        except BaseException:
            for folder in created:
                if not folder.is_dir():
                    continue
                if folder.name == ".config":
                    for f in folder.iterdir():
                        if f.name.startswith("metadata.json"):
                            f.unlink()
                if not any(folder.iterdir()):
                    folder.rmdir()
            raise
