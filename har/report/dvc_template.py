"""An offline HTML template for `dvc plots show`.

DVC's default page loads Vega, Vega-Lite and Vega-Embed from a CDN, so its plots are blank without
internet. This template inlines the three libraries (bundled by vl-convert, no network) and leaves out
DVC's ``{scripts}`` placeholder, so DVC adds no CDN tags. ``.dvc/config`` points `plots.html_template`
at it; `har tune` writes it on first use, `har plots-template` on demand."""

from __future__ import annotations

from pathlib import Path

import vl_convert

from har.atomic import atomic_file

DEFAULT_PATH = Path(".dvc") / "plots" / "offline.html"
VEGA_LITE = "v5.21"  # the spec version of DVC's built-in templates (vega-lite v5 schema)

PAGE = """<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <meta charset="utf-8">
    <title>DVC plots (har-lab, offline)</title>
    <script type="text/javascript">
{bundle}
    </script>
    <style>
        body {{ font-family: system-ui, sans-serif; margin: 1.5rem; }}
        table {{ border-spacing: 15px; }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def offline_template() -> str:

    return PAGE.format(bundle=vl_convert.javascript_bundle(vl_version=VEGA_LITE))


def write_offline_template(path: Path = DEFAULT_PATH, force: bool = False) -> Path:
    """Write the template (atomically) unless it is there already."""
    if path.is_file() and not force:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "w") as fh:
        fh.write(offline_template())
    return path


def ensure_in_dvc_repo(root: Path = Path(".")) -> Path | None:
    """In a DVC project (a .dvc folder here), make sure the offline template exists."""
    if not (root / ".dvc").is_dir():
        return None
    return write_offline_template(root / DEFAULT_PATH)
