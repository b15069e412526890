"""The docs show what the code computes."""

from __future__ import annotations

from pathlib import Path

import pytest

import mnaszoo

DOCS = Path(__file__).parents[1] / "docs"


@pytest.mark.parametrize("name", sorted(mnaszoo.ARCHITECTURES))
def test_architecture_tables_are_current(name: str) -> None:
    assert str(mnaszoo.describe(name)) in (DOCS / "architectures.md").read_text()


def _weights_table() -> str:
    from mnaszoo.manifest import HubSource, load_manifest

    manifest = load_manifest()
    lines = [
        "| weights id | default | source | top-1 / top-5 (ImageNet val) | preprocessing | params"
        " | license | verified by |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for weights_id in mnaszoo.list_weights():
        r = mnaszoo.get_weights(weights_id)
        if isinstance(r.source, HubSource):
            source = (
                f"[{r.source.repo_id}](https://huggingface.co/{r.source.repo_id})"
                f" `{r.source.filename}` @ `{r.source.revision[:8]}`"
            )
        else:
            source = f"[torchvision]({r.source})"
        metric = next(m for m in r.metrics if m.dataset == "imagenet-1k-val")
        p = r.preprocessing
        verified = (
            "sha256"
            if r.sha256
            else f"sha256 prefix {r.sha256_prefix}"
            if r.sha256_prefix
            else "Hub LFS sha256"
        )
        default = "yes" if manifest.defaults[r.model] == weights_id else ""
        lines.append(
            f"| `{weights_id}` | {default} | {source} | {metric.top1} / {metric.top5} |"
            f" resize {p.resize} {p.interpolation}, crop {p.input_size} | {r.num_params:,} |"
            f" {r.license} | {verified} |"
        )
    return "\n".join(lines)


def test_weights_table_is_current() -> None:
    assert _weights_table() in (DOCS / "weights.md").read_text()
