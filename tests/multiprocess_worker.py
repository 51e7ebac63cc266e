"""One process of tests/multiprocess_test.py: `dofjax.main`, then a dump of this process's state.

  DOFJAX_COORDINATOR=localhost:PORT DOFJAX_NUM_PROCESSES=2 DOFJAX_PROCESS_ID=i \
  DOFJAX_TEST_DUMP=DIR python tests/multiprocess_worker.py --config=configs/tiny.py --workdir=W

Runs exactly what `python -m dofjax.main` runs (its flags and `_run`), and afterwards writes
DIR/state_<process index>.npz: every leaf of the final TrainState as held by this process's own
device, so the test can check that the processes agree. Not a test module itself.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
import jax
import numpy as np
from absl import app
from absl import flags

from dofjax import main as main_lib
from dofjax import train


def _dumping(train_and_evaluate):
  """train_and_evaluate that also saves this process's copy of the final state."""

  def wrapped(config, workdir):
    state = train_and_evaluate(config, workdir)
    leaves = {}
    for path, x in jax.tree_util.tree_leaves_with_path(state):
      leaves[jax.tree_util.keystr(path)] = np.asarray(x.addressable_shards[0].data)
    out = os.path.join(os.environ["DOFJAX_TEST_DUMP"], f"state_{jax.process_index()}.npz")
    np.savez(out, **leaves)
    return state

  return wrapped


if __name__ == "__main__":
  train.train_and_evaluate = _dumping(train.train_and_evaluate)
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(main_lib._run)  # pylint: disable=protected-access
