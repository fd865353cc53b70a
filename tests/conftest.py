"""Test set-up: 8 simulated CPU devices, configured before jax initialises its backends."""

import os

os.environ.setdefault("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in os.environ["XLA_FLAGS"]:
    os.environ["XLA_FLAGS"] += " --xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # keep tensorflow off any GPU
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", 8)

# One scratch folder per test process, removed when it exits: it holds the persistent XLA
# compilation cache (the trainer tests start several runs of the same programs, which then
# compile once; tens of MB) and the temporary folders libraries make with `tempfile` (TFDS
# leaves an empty one for every builder it constructs before the data is prepared). pytest's
# own tmp_path folders stay in the system's temporary folder, where pytest keeps the last runs.
import atexit  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", tempfile.gettempdir())
_scratch = tempfile.mkdtemp(prefix="jaxaffect-tests-")
atexit.register(shutil.rmtree, _scratch, ignore_errors=True)
tempfile.tempdir = _scratch
jax.config.update("jax_compilation_cache_dir",
                  os.environ.get("JAXAFFECT_TEST_XLA_CACHE")
                  or os.path.join(_scratch, "xla-cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
