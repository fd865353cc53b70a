"""A complete throwaway family (declaration, in-memory Task, demo, config), written into a
temporary folder as <root>/jaxaffect/families/toyfam: nothing in the repository changes. Used by
the family-discovery and multi-process tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

TOY_INIT = '''
from jaxaffect.family import Corpus, Family

FAMILY = Family(
    name="toyfam",
    summary="a throwaway family",
    tasks={"toy": "jaxaffect.families.toyfam.task:ToyTask"},
    demo="jaxaffect.families.toyfam.task:ToyDemo",
    demo_help="TOY-DEMO-HELP",
    corpora={"toycorpus": Corpus(writer="jaxaffect.families.toyfam.task:write", help="toy")},
)
'''
TOY_TASK = '''
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxaffect import losses, metrics
from jaxaffect.data.memory_dataset import make_batches
from jaxaffect.demo_runner import Demo
from jaxaffect.task import Task

rng = np.random.default_rng(0)
X = rng.standard_normal((32, 3)).astype(np.float32)
EXAMPLES = [{"x": x, "label": np.int32(x[0] > 0), "valid": np.bool_(True)} for x in X]
PAD = {"x": np.zeros(3, np.float32), "label": np.int32(0), "valid": np.bool_(False)}


class ToyTask(Task):
    def dataset(self, split, *, train, seed, num_epochs, process_index, process_count):
        return make_batches(EXAMPLES, batch_size=self.config.training.batch_size, train=train,
                            seed=seed, num_epochs=num_epochs, process_index=process_index,
                            process_count=process_count, transform=lambda e, r: e,
                            padding=PAD)

    def num_examples(self, split):
        return len(EXAMPLES)

    def dummy_batch(self, batch_size):
        return {"x": np.zeros((batch_size, 3), np.float32),
                "label": np.zeros(batch_size, np.int32), "valid": np.ones(batch_size, bool)}

    def make_model(self):
        return nn.Dense(2)

    def init_variables(self, model, rng, batch):
        return model.init(rng, batch["x"])

    def loss(self, model, params, batch, rng, train, step=None):
        logits = model.apply({"params": params}, batch["x"])
        loss = losses.softmax_cross_entropy(logits, batch["label"],
                                            weights=batch["valid"].astype(jnp.float32))
        return loss, {"loss": loss}

    def predict(self, model, params, batch):
        return {"pred": jnp.argmax(model.apply({"params": params}, batch["x"]), -1)}

    def evaluate(self, outputs, host):
        m = metrics.classification_metrics(outputs["label"], outputs["pred"], 2)
        return {k: float(v) for k, v in m.items()}, []


class ToyDemo(Demo):
    def settings(self, quick):
        return {}

    def prepare(self, data_home, settings):
        return {}

    def arms(self, settings):
        return []

    def header(self, settings, seeds, minutes, devices):
        return "toy"


def write(out, *, size, seed):
    return {"out": out}
'''
TOY_CONFIG = '''
import ml_collections

from jaxaffect.config_loading import mesh_section, optimizer_section, training_section


def get_config(arg=None):
    c = ml_collections.ConfigDict()
    c.task = "toy"
    c.name = "toy"
    c.seed = 0
    c.optimizer = optimizer_section(1e-2)
    c.training = training_section(2, 8, log_every_steps=2, checkpoint_every_steps=0)
    c.mesh = mesh_section()
    c.mesh.num_devices = 1
    return c
'''




def write_toy_family(root: Path) -> Path:
    """Writes the package under `root` (to be put on sys.path); returns its config file."""
    pkg = root / "jaxaffect" / "families" / "toyfam"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(TOY_INIT))
    (pkg / "task.py").write_text(textwrap.dedent(TOY_TASK))
    config = root / "toy_config.py"
    config.write_text(textwrap.dedent(TOY_CONFIG))
    return config
