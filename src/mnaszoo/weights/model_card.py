"""The model card (``README.md``) that :func:`mnaszoo.save_pretrained` and
:func:`mnaszoo.push_to_hub` write beside the weights.

The card's metadata is built with huggingface_hub's own ``ModelCardData`` and ``EvalResult``
(so the Hub reads its ``library_name``, license, pipeline, tags, datasets, ``base_model`` and
``model-index``); its text gives a usage snippet that runs as written, the architecture diagram
(``architecture.svg``), the preprocessing recipe, and the provenance of the weights: source
repository or URL, revision, sha256 of every input file, the conversion applied and the mnaszoo
version. A card the user wrote or edited is kept unless ``overwrite=True``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch

from ..models.mnasnet import MnasNet
from .manifest import DEFAULT_PREPROCESSING, Preprocessing, WeightsRecord

__all__ = [
    "CARD_NAME",
    "DIAGRAM_NAME",
    "card_is_ours",
    "render_card",
    "state_digest",
]

logger = logging.getLogger(__name__)

CARD_NAME = "README.md"
DIAGRAM_NAME = "architecture.svg"
_DATASET_NAMES = {
    "imagenet-1k-val": ("imagenet-1k", "ImageNet-1k", "validation"),
    "imagenet-real": ("imagenet-real", "ImageNet-ReaL", "validation"),
    "imagenetv2-matched-frequency": (
        "imagenetv2-matched-frequency",
        "ImageNetV2 matched frequency",
        "test",
    ),
}


def state_digest(model: torch.nn.Module) -> str:
    """A sha256 over the model's tensors (names, shapes, dtypes, bytes): equal digests mean
    unchanged weights, so a saved model can tell whether its published results still apply."""
    hasher = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        value = tensor.detach().to("cpu").contiguous().reshape(-1)  # 0-d tensors too
        hasher.update(f"{name}|{tuple(tensor.shape)}|{value.dtype}|".encode())
        hasher.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return hasher.hexdigest()


def card_is_ours(directory: Path) -> bool:
    """Whether ``directory/README.md`` is absent, or is the card mnaszoo last wrote there
    unchanged (its sha256 is the one ``config.json`` records)."""
    card = directory / CARD_NAME
    if not card.exists():
        return True
    try:
        recorded = json.loads((directory / "config.json").read_text("utf-8")).get("card_sha256")
        return bool(recorded) and hashlib.sha256(card.read_bytes()).hexdigest() == recorded
    except (OSError, ValueError, AttributeError):
        return False


def _unchanged(model: MnasNet) -> bool:
    provenance = model.provenance or {}
    return bool(provenance.get("state_sha256")) and provenance["state_sha256"] == state_digest(
        model
    )


# Where each publisher states its results (the Hub wants a URL beside a source name).
_SOURCE_URLS = {
    "timm": "https://github.com/huggingface/pytorch-image-models/tree/main/results",
    "torchvision": "https://github.com/pytorch/vision/blob/main/torchvision/models/mnasnet.py",
}


def _source(text: str) -> dict[str, Any]:
    url = _SOURCE_URLS.get(text.split(" ", 1)[0])
    return {} if url is None else {"source_name": text, "source_url": url}


def _metadata(model: MnasNet, record: WeightsRecord | None, name: str) -> Any:
    from huggingface_hub import EvalResult, ModelCardData

    provenance = model.provenance or {}
    published = record is not None and _unchanged(model)
    labels = None if record is None else record.labels
    datasets = ["imagenet-1k"] if labels == "imagenet-1k" else None
    results = []
    if published and record is not None:
        for metric in record.metrics:
            dataset_type, dataset_name, split = _DATASET_NAMES.get(
                metric.dataset, (metric.dataset, metric.dataset, "validation")
            )
            for kind, value in (("top1", metric.top1), ("top5", metric.top5)):
                if value is None:
                    continue
                results.append(
                    EvalResult(
                        task_type="image-classification",
                        task_name="Image Classification",
                        dataset_type=dataset_type,
                        dataset_name=dataset_name,
                        dataset_split=split,
                        metric_type="accuracy",
                        metric_name=f"{'Top-1' if kind == 'top1' else 'Top-5'} accuracy",
                        metric_value=value,
                        **_source(metric.source),
                    )
                )
    base_model = (
        provenance.get("repo_id") if provenance.get("source") == "huggingface-hub" else None
    )
    license_ = record.license if record is not None and record.license else None
    return ModelCardData(
        library_name="mnaszoo",
        license=license_,
        pipeline_tag="image-classification",
        tags=["image-classification", "mnasnet", "mnaszoo", model.config.spec.name],
        datasets=datasets,
        base_model=base_model,
        model_name=name,
        eval_results=results or None,
    )


def _usage(location: str, preprocessing: Preprocessing) -> str:
    return (
        "```python\n"
        "import mnaszoo\n"
        "from PIL import Image\n\n"
        f"model = mnaszoo.from_pretrained({location!r})\n"
        'image = Image.new("RGB", (320, 240), "gray")  # your photo: Image.open("photo.jpg")\n'
        "for guess in mnaszoo.predict(image, model, topk=3):\n"
        "    print(guess.label, round(guess.score, 3))\n"
        "```\n\n"
        f"`mnaszoo.predict` applies the preprocessing below (crop {preprocessing.input_size},"
        f" resize {preprocessing.resize}, {preprocessing.interpolation}); for your own loop,"
        " `mnaszoo.make_transform(model)` gives the same transform.\n"
    )


def _preprocessing_table(p: Preprocessing) -> str:
    rows = [
        ("Resize (shorter side)", f"{p.resize} ({p.interpolation})"),
        ("Centre crop", f"{p.input_size} x {p.input_size}"),
        ("Scale", "to [0, 1]"),
        ("Mean (RGB)", ", ".join(f"{x:g}" for x in p.mean)),
        ("Std (RGB)", ", ".join(f"{x:g}" for x in p.std)),
    ]
    return "| Step | Value |\n|---|---|\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)


def _provenance_section(model: MnasNet, saved: dict[str, str], version: str) -> str:
    p = model.provenance or {}
    lines = []
    if p.get("repo_id"):
        lines.append(f"- Source: Hugging Face Hub repository `{p['repo_id']}`")
        lines.append(f"- Revision: `{p.get('revision')}`")
    elif p.get("url"):
        lines.append(f"- Source: `{p['url']}`")
    elif p:
        lines.append(f"- Source: {p.get('source')}")
    else:
        lines.append("- Source: none (randomly initialised, or trained from scratch)")
    if p.get("weights_id"):
        lines.append(f"- mnaszoo weights id: `{p['weights_id']}`")
    for filename, sha in sorted((p.get("files") or {}).items()):
        lines.append(f"- Input file `{filename}`: sha256 `{sha}`")
    if p.get("conversion"):
        lines.append(f"- Conversion: {p['conversion']}")
    if p.get("mnaszoo_version"):
        lines.append(f"- Loaded with mnaszoo {p['mnaszoo_version']}")
    changed = "unchanged since loading" if _unchanged(model) else "changed since loading"
    if p.get("state_sha256"):
        lines.append(f"- Weights {changed} (fine-tuned or edited when changed)")
    for filename, sha in sorted(saved.items()):
        lines.append(f"- Saved file `{filename}`: sha256 `{sha}`")
    lines.append(f"- Saved with mnaszoo {version}")
    return "\n".join(lines) + "\n"


def render_card(
    model: MnasNet,
    *,
    location: str,
    saved: dict[str, str],
    version: str,
) -> str:
    """The card's full text (YAML metadata and Markdown body).

    Args:
        model: the model being saved.
        location: what ``from_pretrained`` is given to load it (a Hub repo id or a folder).
        saved: the saved files' names and sha256.
        version: the mnaszoo version writing the card.
    """
    from ..models.summary import describe

    record: WeightsRecord | None = model.weights_info
    name = location.rstrip("/").rsplit("/", 1)[-1] or model.config.spec.name
    data = _metadata(model, record, name)
    preprocessing = DEFAULT_PREPROCESSING if record is None else record.preprocessing
    summary = describe(model.config)
    config = model.config
    title = f"{config.spec.name} (width x{config.width_mult:g}, depth x{config.depth_mult:g})"
    body = [
        f"# {name}\n",
        f"A MnasNet image classifier, {title}, {config.num_classes} classes, saved with"
        f" [mnaszoo](https://github.com/mnaszoo/mnaszoo). {summary.params:,} parameters,"
        f" {summary.macs / 1e6:,.1f} M multiply-adds at 224 x 224.\n",
        "## Usage\n",
        _usage(location, preprocessing),
        "## Architecture\n",
        f"![{config.spec.name} architecture]({DIAGRAM_NAME})\n",
        "## Preprocessing\n",
        _preprocessing_table(preprocessing),
    ]
    if data.eval_results:
        body.append("## Results\n")
        body.append(
            "Reported for these weights by their publisher (the weights are unchanged):\n\n"
            "| Dataset | Metric | Value | Reported by |\n|---|---|---|---|\n"
            + "".join(
                f"| {r.dataset_name} | {r.metric_name} | {r.metric_value}"
                f" | {r.source_name or ''} |\n"
                for r in data.eval_results
            )
        )
    if record is not None and record.notes:
        body.append(f"## Training recipe\n\n{record.notes}\n")
    body.append("## Provenance\n")
    body.append(_provenance_section(model, saved, version))
    yaml: str = data.to_yaml()
    return "---\n" + yaml + "\n---\n\n" + "\n".join(body)
