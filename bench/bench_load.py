"""Benchmark loading the model: the pickle it used to be (joblib) against plain arrays (npz).

Uses the model at $CRAMPDX_MODEL or the default model directory (retrain it with
`crampdx train` if it is refused). The same fitted estimator is saved three ways in a
temporary folder and read back, each the way a loader would (read, SHA-256, parse):

* joblib  - the former model.joblib (a pickle: runs code when loaded)
* skops   - skops.io with the scikit-learn types it needs trusted (if skops is installed)
* npz     - model.npz, plain arrays checked and rebuilt into the estimator (what crampdx does)

and `Diagnoser.load` as a whole (manifest, hashes, knowledge base, checks). Medians of
--repeats runs.

    python bench/bench_load.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import joblib  # noqa: E402

from _timing import machine, median_seconds  # noqa: E402
from crampdx.model.diagnoser import Diagnoser  # noqa: E402
from crampdx.model.persistence import model_file_bytes, read_model_file  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    diagnoser = Diagnoser.load()
    estimator = diagnoser.estimator_
    n_trees = sum(len(iteration) for iteration in estimator._predictors)
    print(f"{machine()}; model at {diagnoser.path_}: {n_trees:,} trees, {estimator.n_features_in_} findings")
    folder = Path(tempfile.mkdtemp())
    formats = {}

    pickled = folder / "model.joblib"
    joblib.dump(estimator, pickled)
    formats["joblib (pickle)"] = (pickled, lambda: joblib.load(_verified(pickled)))

    try:
        import skops.io as sio
    except ImportError:
        print("skops is not installed: skipped")
    else:
        skops_file = folder / "model.skops"
        sio.dump(estimator, skops_file)
        trusted = sio.get_untrusted_types(file=skops_file)
        formats["skops (trusted types)"] = (skops_file, lambda: sio.loads(_verified(skops_file).read(), trusted=trusted))

    arrays = folder / "model.npz"
    arrays.write_bytes(model_file_bytes(estimator, diagnoser.manifest_))
    formats["npz (plain arrays)"] = (arrays, lambda: read_model_file(arrays.read_bytes()))

    print(f"\n{'model file':<24}{'size':>10}{'median load':>14}")
    for name, (path, load) in formats.items():
        median, _ = median_seconds(load, args.repeats)
        print(f"{name:<24}{path.stat().st_size / 1e6:>8.1f} MB{median * 1000:>11.0f} ms")
    median, _ = median_seconds(lambda: Diagnoser.load(diagnoser.path_), args.repeats)
    print(f"{'Diagnoser.load (all)':<24}{'':>10}{median * 1000:>11.0f} ms")


def _verified(path: Path) -> io.BytesIO:
    """The file's bytes, hashed first as the loader does."""
    content = path.read_bytes()
    hashlib.sha256(content).hexdigest()
    return io.BytesIO(content)


if __name__ == "__main__":
    main()
