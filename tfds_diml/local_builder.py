"""`LocalBuilder`, the base of the dofjax builders (whose data never comes from the network), and
`rgbd_features`, the TFDS features they share.

TFDS's own progress lines assume a download: preparing prints "Downloading and preparing dataset
Unknown size ..." and "Dataset ... downloaded and prepared", and the first `is_prepared()` logs a
warning that the not-yet-written folder "has no dataset_info.json". For these builders that is
wrong or alarming, so they print one honest line instead (where the data comes from, where it
goes) and keep TFDS's split progress bars. Only those messages of these builders are changed;
every error still propagates.
"""

import contextlib
import logging

import numpy as np
import tensorflow_datasets as tfds

# TFDS (via absl) logs "Variant folder %s has no %s" from `is_prepared` for a folder not written
# yet.
_NOT_PREPARED_MESSAGE_PREFIX = "Variant folder "


class _DropNotPreparedWarning(logging.Filter):
  """Drops TFDS's 'Variant folder <path> has no ...' record for one folder."""

  def __init__(self, folder: str):
    super().__init__()
    self._folder = folder

  def filter(self, record: logging.LogRecord) -> bool:
    msg = record.msg if isinstance(record.msg, str) else ""
    return not (msg.startswith(_NOT_PREPARED_MESSAGE_PREFIX) and record.args
                and str(record.args[0]) == self._folder)


@contextlib.contextmanager
def _without_not_prepared_warning(folder: str):
  """Within the block, TFDS's 'has no dataset_info.json' warning about `folder` is not logged."""
  logger = logging.getLogger("absl")
  drop = _DropNotPreparedWarning(folder)
  logger.addFilter(drop)
  try:
    yield
  finally:
    logger.removeFilter(drop)


class LocalBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A GeneratorBasedBuilder whose data is made on this machine.

  Subclasses set DATA_ORIGIN, a few words for the progress line saying where the examples come
  from, e.g. "generated locally, nothing is downloaded".
  """

  DATA_ORIGIN = "made locally, nothing is downloaded"

  def dataset_label(self) -> str:
    """'name/config', e.g. 'synthetic_rgbd/tiny'."""
    return f"{self.name}/{self.builder_config.name}"

  def is_prepared(self) -> bool:
    """Whether the data is written, without TFDS's warning when it is not (yet)."""
    with _without_not_prepared_warning(str(self.data_path)):
      return super().is_prepared()

  def _log_download_bytes(self) -> None:
    # Overrides TFDS's "Downloading and preparing dataset ..." line (printed just before the
    # split progress bars).
    print(f"Preparing {self.dataset_label()} ({self.DATA_ORIGIN}) in {self.data_dir} ...",
          flush=True)

  def _log_download_done(self) -> None:
    # Overrides TFDS's "Dataset ... downloaded and prepared to ..." line.
    print(f"Prepared {self.dataset_label()} in {self.data_dir}.", flush=True)


def rgbd_features() -> dict:
  """The TFDS features every dofjax builder shares (`storage` describes them): image uint8
  HxWx3, depth uint16 HxWx1 (mm, PNG, so never truncated to 8 bits), scene and stem strings."""
  return {
      "image": tfds.features.Image(shape=(None, None, 3), dtype=np.uint8, encoding_format="png"),
      "depth": tfds.features.Image(shape=(None, None, 1), dtype=np.uint16, encoding_format="png"),
      "scene": tfds.features.Text(),
      "stem": tfds.features.Text(),
  }
