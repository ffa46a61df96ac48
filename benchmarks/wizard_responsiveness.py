"""Event-loop stalls while the training wizard trains, from Next to the results page.

The wizard scans a 4-class folder of JPEGs made from real photos, then trains on it
(Thorough by default: features, head, out-of-fold checks, fine-tuning epochs with live
curves and a log, calibration) with the real Lite0 weights, while a 5 ms QTimer on the
GUI thread records the gaps between its ticks. The longest gap beyond the timer's own
interval is the worst freeze a user could feel; the goal is <= 100 ms. The wizard's
own warm-up (importing scipy, scikit-learn and cleanlab as it opens) ends before Next.

    python benchmarks/wizard_responsiveness.py [--per-class 30] [--mode finetune] [--epochs 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile

from _common import StallMeter
from train_head import make_classes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=30)
    parser.add_argument("--mode", choices=("head", "finetune"), default="finetune")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("EFFNET_APP_HOME", tempfile.mkdtemp(prefix="effnet-bench-"))
    folder = make_classes(args.per_class)

    from PySide6.QtCore import QEventLoop, QSettings

    from effnet_app.gui.app import create_application
    from effnet_app.gui.wizard.wizard import TrainWizard

    app = create_application()
    settings = QSettings(tempfile.mktemp(suffix=".ini"), QSettings.Format.IniFormat)
    wizard = TrainWizard(settings=settings)
    wizard.show()

    def wait_until(done) -> None:
        while not done():
            app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 50)

    wait_until(lambda: wizard.options_page.base_key() is not None)  # the model list
    wizard.data_page.scan(folder)
    wait_until(lambda: wizard.data_page.isComplete())
    wizard.next()
    wizard.options_page.select_base("lite0")
    wizard.options_page.modes.button(1 if args.mode == "finetune" else 0).setChecked(True)
    wizard.options_page.epochs.setValue(args.epochs)
    # The wizard imports scipy, scikit-learn and cleanlab as it opens (their compiled
    # parts hold the GIL for ~250 ms); a user takes longer than that to choose a folder.
    wait_until(lambda: not wizard.controller.preloading)
    meter = StallMeter()
    meter.start()
    wizard.next()
    done = QEventLoop()
    wizard.controller.train_finished.connect(done.quit)
    wizard.controller.train_failed.connect(lambda exc: (print("failed:", exc), done.quit()))
    done.exec()
    seconds = meter.stop()
    result = wizard.state.result
    print(
        f"platform: {app.platformName()}, {len(wizard.state.dataset.samples)} images, "
        f"{args.mode}, {seconds:.1f} s, validation accuracy "
        f"{result.accuracy:.3f}"
        if result
        else "no result"
    )
    print(f"epochs on the curves: {wizard.training_page.curves.epoch_count()}")
    print(meter.report())
    wizard.controller.cancel_all()
    wizard.close()


if __name__ == "__main__":
    main()
