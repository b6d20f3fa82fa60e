"""Makes docs/images/report.png, the picture of a run report in docs/report.md.

Usage (from the repository root):

    python docs/screenshot_report.py                 # trains a small TextCNN run first
    python docs/screenshot_report.py runs/textcnn    # or shows an existing finished run

It (re)writes the run's report.html and saves headless Chromium's view of the
top of the page (install Chromium with `apt-get install chromium`).
"""

import argparse
import pathlib
import shutil
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE_RUN = [
    "--data", "sms", "--max-examples", "2000", "--epochs", "6", "--embedding-dim", "32", "--filters", "16",
    "--ngram-features", "5000", "--learning-rate", "0.003", "--schedule", "cosine", "--decay-steps", "250",
    "--verbose", "0",
]  # fmt: skip


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    sys.exit("error: Chromium is not installed. Install it (apt-get install chromium) and rerun.")


def run(*command):
    subprocess.run([sys.executable, *command], check=True, cwd=REPO)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", nargs="?", help="A finished run; without it a small TextCNN run is trained.")
    parser.add_argument("--output", default=str(REPO / "docs" / "images" / "report.png"))
    parser.add_argument("--width", type=int, default=1100, help="Browser window width in pixels.")
    parser.add_argument("--height", type=int, default=1440, help="Height of the page's top part to show.")
    arguments = parser.parse_args()
    chromium = find_chromium()
    run_dir = arguments.run_dir
    if run_dir is None:
        run_dir = str(pathlib.Path(tempfile.mkdtemp(prefix="kerastrain-report-")) / "sms_textcnn_cosine")
        run("-m", "kerastrain.recipes.textcnn", *EXAMPLE_RUN, "--output-dir", run_dir)
    run("-m", "kerastrain", "report", run_dir)
    page = pathlib.Path(run_dir, "report.html").resolve()
    subprocess.run(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
            f"--window-size={arguments.width},{arguments.height}", f"--screenshot={arguments.output}",
            page.as_uri(),
        ],
        check=True, capture_output=True,
    )  # fmt: skip
    print(f"saved {arguments.output} ({pathlib.Path(arguments.output).stat().st_size // 1024} KB) of {page}")


if __name__ == "__main__":
    main()
