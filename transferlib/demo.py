"""A web page for a model :func:`~transferlib.tryout.try_strategies` handed over: upload a photo (or type a
text, for a text model), see the classes the model puts first with their calibrated probabilities, and
the prediction set.

    $ python my_model/app.py                          # serves http://127.0.0.1:7860, this computer only
    >>> build("my_model").launch(server_port=7860, **LOCAL)  # the same from Python

It runs offline: Gradio's fonts and scripts ship in its package, analytics are off, nothing is shared,
and the server listens on 127.0.0.1 only. The folder holds what :func:`~transferlib.handover.write`
wrote: ``model.safetensors`` (read by :func:`~transferlib.inference.load_predictor`, temperature
included) and ``prediction_sets.json`` (the conformal threshold and its measured coverage).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from .calibration import prediction_sets
from .inference import Predictor, load_predictor

if TYPE_CHECKING:
    import gradio as gr

__all__ = ["classify", "build", "serve", "APP", "LOCAL"]

# How the page is served: this computer only, no public link, no Node server, no MCP tools, and each
# setting given here so that no GRADIO_* environment variable or hosted notebook (Colab turns
# share on by default) changes it; errors (a file that is not a photo) are shown on the page.
LOCAL = {"server_name": "127.0.0.1", "share": False, "ssr_mode": False, "mcp_server": False, "footer_links": [],
         "show_error": True, "quiet": True}

APP = '''"""Try this model in a browser: python app.py, then open http://127.0.0.1:7860 (this computer only).
Written by transferlib's try; it needs the course's packages (transferlib, and gradio==6.31.0)."""
from pathlib import Path

from transferlib.demo import serve

if __name__ == "__main__":
    serve(Path(__file__).resolve().parent)
'''


def _sets(folder: Path) -> dict[str, Any]:
    path = folder / "prediction_sets.json"
    if not path.is_file():
        raise FileNotFoundError(f"No prediction_sets.json in {folder}. Point at the folder that "
                                "`python -m transferlib try PATH --out FOLDER` wrote.")
    return json.loads(path.read_text(encoding="utf-8"))


def classify(predictor: Predictor, sets: dict[str, Any], image: str | Path | Image.Image | None
             ) -> tuple[dict[str, float], str]:
    """({class: calibrated probability}, the prediction set in words) for one photo, a file or a PIL image
    (read as the training photos were: turned upright, transparency onto white); for a text model, a text.

    >>> probs, said = classify(load_predictor("my_model/model.safetensors"), sets, Image.open("cat.jpg"))
    """
    unit = predictor.unit
    if image is None or (unit == "text" and not str(image).strip()):
        return {}, "Upload a photo first." if unit == "photo" else "Type a text first."
    try:
        _, probs = predictor.probabilities(str(image) if unit == "text" else image)
    except (OSError, ValueError):        # open_rgb's advice is for a folder of files, not for a web page
        raise ValueError("This file could not be read as a photo: upload a JPEG, PNG or WebP image.") from None
    members = prediction_sets(probs.numpy(), sets["threshold"])[0]
    chosen = [c for c, keep in zip(predictor.classes, members) if keep]
    value, low, high = sets["measured_coverage"]
    said = (f"**Prediction set:** {', '.join(chosen) if chosen else 'empty (no class is likely enough)'}. "
            f"Sets made this way held the true class of {value:.0%} of the {sets['items']} {unit}s it was tried "
            f"on, each scored by a model that had not seen it (95% interval {low:.0%} to {high:.0%}; target "
            f"{sets['coverage']:.0%}): an average over {unit}s like those, not a promise for this one, and "
            f"meaningless for a {unit} of none of these classes.")
    return {c: float(p) for c, p in zip(predictor.classes, probs[0])}, said


def build(folder: str | Path, device: str = "cpu") -> gr.Blocks:
    """The page as a ``gradio.Blocks``: an image (or a text) in, the top classes and the prediction set out.

    >>> build("my_model").launch(**LOCAL)
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")   # gradio reads it too; analytics_enabled below
    import gradio as gr

    folder = Path(folder)
    sets = _sets(folder)
    predictor = load_predictor(folder / "model.safetensors", device)
    unit, title = predictor.unit, "What is in this photo?" if predictor.unit == "photo" else "What is this text?"
    about = (f"A model ({predictor.config['arch']}) for: {', '.join(predictor.classes)}. It gives every {unit} one "
             f"of these classes, even a {unit} of none of them. How it was chosen and measured: report.html in "
             f"the folder {folder.resolve().name}/.")
    with gr.Blocks(title=title, analytics_enabled=False,
                   delete_cache=(3600, 3600)) as demo:      # uploads are deleted after an hour
        gr.Markdown(f"# {title}\n{about}")
        with gr.Row():
            if unit == "text":
                with gr.Column():
                    image = gr.Textbox(label="Your text", lines=4, elem_id="your-text")
                    go = gr.Button("Classify", elem_id="classify")
            else:     # the uploaded file itself: read by load_predictor exactly as the training photos were
                image = gr.Image(type="filepath", image_mode=None, label="Your photo", sources=["upload"])
            with gr.Column():
                top = gr.Label(num_top_classes=3, label="Classes, with calibrated probabilities",
                               elem_id="top-classes")
                said = gr.Markdown(elem_id="prediction-set")
        for event in (image.submit, go.click) if unit == "text" else (image.change,):
            event(lambda im: classify(predictor, sets, im), image, [top, said])
    return demo


def serve(folder: str | Path, argv: list[str] | None = None) -> None:
    """``app.py``'s entry point: build the page and serve it on 127.0.0.1 until Ctrl-C.

    >>> serve("my_model", ["--port", "7861"])
    """
    parser = argparse.ArgumentParser(description="Serve the model in this folder on http://127.0.0.1.")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    demo = build(folder, args.device)
    print(f"Serving on http://127.0.0.1:{args.port} for this computer only (Ctrl-C stops it). On Colab or "
          "Binder that address is the remote machine's, not yours.", flush=True)
    try:
        demo.launch(server_port=args.port, **LOCAL)
    except OSError as err:                       # gradio's own advice names its settings, not this script's
        raise SystemExit(f"Port {args.port} is not free ({err}): python app.py --port {args.port + 1}") from None
