"""python -m dofjax.export: ONNX files of a trained workdir's depth network (and the renderer),
run in ONNX Runtime and compared with JAX.

These need the `export` extra (pip install -e '.[test,export]'), which pins orbax-checkpoint
below the core's newest, so they are marked `export` (and `slow`, to stay out of the README's
fast command): .ci/run runs them in a venv of their own. The checks that need no extra (bad
flags, the missing extra's message) are in export_cli_test.py.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.export]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _perturbed(tree, rng, scale, positive=False):
  """tree + N(0, scale) noise per leaf (|.| + 0.5 when `positive`, for BatchNorm variances)."""
  import jax  # pylint: disable=g-import-not-at-top

  def leaf(x):
    x = np.asarray(x)
    noisy = x + scale * rng.standard_normal(x.shape).astype(x.dtype)
    return np.abs(noisy) + 0.5 if positive else noisy

  return jax.tree_util.tree_map(leaf, tree)


def make_workdir(path, ema=True):
  """A workdir of configs/tiny.py (with a moving average when `ema`) whose checkpoint (step 3)
  holds weights unlike a fresh init: perturbed parameters, BatchNorm running means and variances
  far from 0 and 1, and, with `ema`, a moving average that differs from the trained weights."""
  import jax  # pylint: disable=g-import-not-at-top
  from configs import tiny  # pylint: disable=g-import-not-at-top
  from dofjax import checkpointing  # pylint: disable=g-import-not-at-top
  from dofjax import state as state_lib  # pylint: disable=g-import-not-at-top
  from dofjax import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  config = tiny.get_config()
  config.ema_decay = 0.99 if ema else 0.0
  st = state_lib.create_train_state(config, jax.random.key(0))
  rng = np.random.default_rng(1)
  stats = jax.tree_util.tree_map_with_path(
      lambda path, x: _perturbed(x, rng, 0.5, positive=path[-1].key == "var"),
      st.gen.batch_stats)
  gen = st.gen.replace(params=_perturbed(st.gen.params, rng, 0.01), batch_stats=stats)
  ema_weights = None
  if ema:
    ema_weights = state_lib.Weights(params=_perturbed(gen.params, rng, 0.01), batch_stats=stats)
  st = st.replace(step=np.int32(3), gen=gen, gen_ema=ema_weights)
  manager = checkpointing.make_manager(path, keep=1)
  checkpointing.save(manager, 3, st, {})
  manager.wait_until_finished()
  manager.close()
  workdir_lib.record_config(path, config)
  return path, config, st


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  return make_workdir(tmp_path_factory.mktemp("export") / "w")


def _run_export(*flags):
  env = dict(os.environ, PYTHONPATH=ROOT)
  env.pop("JAX_NUM_CPU_DEVICES", None)
  return subprocess.run([sys.executable, "-m", "dofjax.export", *flags], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=900)


def _photos(h, w):
  from dofjax import export  # pylint: disable=g-import-not-at-top
  frames = [(n, p) for n, p, _ in export.parity_frames(h, w, motorcycle=False)]
  return frames + export.random_photos(h, w, seed=7)


def _predict(config, weights, photo_u8):
  """JAX depth (H, W) metres of the tiny model with `weights` on one uint8 photo, through the
  project's own test-time path (steps.predict_code, the config's convolutions)."""
  import jax  # pylint: disable=g-import-not-at-top
  from dofjax import depth, steps  # pylint: disable=g-import-not-at-top
  x = photo_u8[None].astype(np.float32) / 127.5 - 1.0
  code = steps.predict_code(weights, x, jax.random.key(0), config=config)[0, ..., 0]
  return np.asarray(depth.decode_depth(code, config.depth_near_m, config.depth_far_m))


def test_cli_writes_a_float32_file_that_onnx_runtime_runs_like_jax(workdir, tmp_path):
  """The file takes uint8 (1, 32, 32, 3) and returns metres (1, 32, 32) that match the moving
  average's JAX prediction to 1e-3 in the code; the trained (non-averaged) weights would not."""
  from dofjax import depth, export  # pylint: disable=g-import-not-at-top
  from dofjax import state as state_lib  # pylint: disable=g-import-not-at-top
  path, config, st = workdir
  out = tmp_path / "depth.onnx"
  proc = _run_export(f"--workdir={path}", f"--output={out}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "| float32 | synthetic room 0 |" in proc.stdout and "Motorcycle" in proc.stdout
  assert f"wrote {out}" in proc.stdout, proc.stdout
  assert sorted(os.listdir(tmp_path)) == ["depth.onnx"]   # No temporary left behind.

  sess = export.session(str(out))
  (inp,), (outp,) = sess.get_inputs(), sess.get_outputs()
  assert (inp.name, inp.shape, inp.type) == ("photo", [1, 32, 32, 3], "tensor(uint8)")
  assert (outp.name, outp.shape, outp.type) == ("depth_m", [1, 32, 32], "tensor(float)")
  far_from_trained = []
  for name, photo in _photos(32, 32):
    ours = export.run_session(sess, photo[None])[0]
    assert ours.dtype == np.float32 and ours.shape == (32, 32)
    assert (ours >= config.depth_near_m - 1e-4).all() and (ours <= config.depth_far_m + 1e-3).all()
    want = _predict(config, state_lib.prediction_weights(st), photo)
    code_diff = np.abs(depth.encode_depth(ours) - depth.encode_depth(want)).max()
    assert code_diff <= export.PARITY_CODE_TOL, (name, code_diff)
    trained = _predict(config, st.gen.weights(), photo)
    far_from_trained.append(np.abs(depth.encode_depth(ours) - depth.encode_depth(trained)).max())
  assert min(far_from_trained) > 10 * export.PARITY_CODE_TOL, far_from_trained


def test_precisions_and_sizes(workdir, tmp_path):
  """float16 halves the file and int8 quarters it, each drifting a little from JAX; --size
  gives another fixed input size (the U-Net is fully convolutional)."""
  from dofjax import export  # pylint: disable=g-import-not-at-top
  path, _, _ = workdir
  config, weights, step, hw = export.load_export_model(str(path), "64x32")
  assert (step, hw) == (3, (64, 32))
  sizes, drift = {}, {}
  for precision in export.PRECISIONS:
    out = tmp_path / f"{precision}.onnx"
    rows, sizes[precision] = export.write_depth_model(config, weights, hw, str(out), precision,
                                                      photos=_photos(*hw))
    assert os.path.getsize(out) == sizes[precision]
    assert export.session(str(out)).get_inputs()[0].shape == [1, 64, 32, 3]
    drift[precision] = max(r.max_abs_code for r in rows)
    assert min(r.delta1 for r in rows) > 0.95, (precision, rows)
  assert drift["float32"] <= export.PARITY_CODE_TOL
  assert drift["float32"] < drift["float16"] < 0.02, drift
  assert 0.4 < sizes["float16"] / sizes["float32"] < 0.6, sizes
  assert sizes["int8"] / sizes["float32"] < 0.4, sizes


def test_float32_parity_failure_writes_nothing(workdir, tmp_path, monkeypatch):
  """A converter that got the model wrong (here: the weights' signs flipped after folding) is caught:
  ExportParityError (the CLI prints the table and exits 1) and no file."""
  import onnx  # pylint: disable=g-import-not-at-top
  from onnx import numpy_helper  # pylint: disable=g-import-not-at-top
  from dofjax import export  # pylint: disable=g-import-not-at-top
  path, _, _ = workdir
  config, weights, _, hw = export.load_export_model(str(path))
  real_fold = export.fold_constants

  def faulty_fold(src, dst):
    real_fold(src, dst)
    model = onnx.load(dst)
    for t in model.graph.initializer:
      if t.data_type == onnx.TensorProto.FLOAT and np.prod(t.dims) >= 16:
        t.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(t), t.name))
    onnx.save(model, dst)

  monkeypatch.setattr(export, "fold_constants", faulty_fold)
  with pytest.raises(export.ExportParityError) as e:
    export.write_depth_model(config, weights, hw, str(tmp_path / "d.onnx"),
                             photos=export.random_photos(*hw))
  assert "was not written" in str(e.value)
  assert max(r.max_abs_code for r in e.value.rows) > export.PARITY_CODE_TOL
  assert os.listdir(tmp_path) == []


def test_renderer_export_matches_the_jax_render(tmp_path):
  """photo + depth + focus + blur scale -> bokeh in ONNX Runtime, >= 50 dB from JAX."""
  from dofjax import export  # pylint: disable=g-import-not-at-top
  out = tmp_path / "render.onnx"
  frames = export.parity_frames(32, 48, motorcycle=False)[:2]
  rows, nbytes = export.write_renderer((32, 48), str(out), frames)
  assert nbytes == os.path.getsize(out)
  assert min(p for _, p in rows) >= export.RENDER_PSNR_MIN_DB, rows
  # The file blurs: off-focus depth gives a render far from the photo, in focus gives it back.
  sess = export.session(str(out))
  name, photo, depth_m = frames[0]
  del name
  flat = np.full_like(depth_m, 2.0)
  sharp = export.run_session(sess, photo[None], flat[None], np.float32([2.0]), np.float32([24.0]))
  np.testing.assert_allclose(sharp[0], photo / 255.0, atol=2e-3)
  blurred = export.run_session(sess, photo[None], flat[None], np.float32([0.5]),
                               np.float32([24.0]))
  assert np.abs(blurred[0] - photo / 255.0).mean() > 0.02


def test_workdir_without_checkpoint_is_one_error_line(workdir, tmp_path):
  from dofjax import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  _, config, _ = workdir
  empty = tmp_path / "empty"
  workdir_lib.record_config(empty, config)
  proc = _run_export(f"--workdir={empty}", f"--output={tmp_path / 'd.onnx'}")
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert proc.stderr.strip().splitlines() == [
      f"error: No checkpoint in {empty}/checkpoints; train first, e.g. python -m dofjax.main "
      f"--config=configs/quickstart.py --workdir={empty}"], proc.stderr
  assert not (tmp_path / "d.onnx").exists()


def test_bad_size_is_one_error_line(workdir, tmp_path):
  path, _, _ = workdir
  proc = _run_export(f"--workdir={path}", f"--output={tmp_path / 'd.onnx'}", "--size=48x32")
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines() == [
      "error: --size=48x32: both sides must be positive multiples of 2**model.num_downs = 32, "
      "e.g. --size=32x32."], proc.stderr


def test_benchmark_times_onnx_runtime_and_jax():
  """`benchmark export` on the tiny config: a table, then the JSON with one JAX case and one
  ONNX Runtime case per (precision, threads)."""
  import json  # pylint: disable=g-import-not-at-top
  env = dict(os.environ, PYTHONPATH=ROOT)
  env.pop("JAX_NUM_CPU_DEVICES", None)
  proc = subprocess.run(
      [sys.executable, "-m", "dofjax.benchmark", "export", "--config=configs/tiny.py",
       "--sizes=32", "--threads=1,2", "--precisions=float32,int8", "--repeats=2"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  result = json.loads(proc.stdout.strip().splitlines()[-1])
  cases = {(c["runtime"], c.get("precision"), c["threads"]) for c in result["cases"]}
  assert cases == {("jax", None, None), ("onnxruntime", "float32", 1),
                   ("onnxruntime", "float32", 2), ("onnxruntime", "int8", 1),
                   ("onnxruntime", "int8", 2)}, cases
  assert all(c["ms"] > 0 for c in result["cases"])
  assert "| 32 | ONNX Runtime | int8 | 2 |" in proc.stdout
