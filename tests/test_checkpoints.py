"""Checkpoints: round trip, atomic writes, corruption and mismatch detection, no code execution."""

import json
import pickle

import pytest
import torch

from explorer import checkpoints
from explorer.checkpoints import load_checkpoint, load_training_state, save_checkpoint
from explorer.errors import CheckpointError
from explorer.model import VAE, ModelConfig


@pytest.fixture
def saved(tmp_path, tiny_config):
    torch.manual_seed(0)
    model = VAE(tiny_config)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.rand(3, 1, 4, 3))[0].sum().backward()
    opt.step()
    save_checkpoint(
        tmp_path / "run",
        model,
        epoch=2,
        step=20,
        train_config={"seed": 1},
        best_test_elbo=-99.5,
        optimizer=opt,
        rng={"cpu": torch.arange(5, dtype=torch.uint8)},
    )
    return tmp_path / "run", model, opt


def test_roundtrip(saved):
    folder, model, opt = saved
    loaded = load_checkpoint(folder)
    assert loaded.config == model.config and not loaded.training
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    config = json.loads((folder / "config.json").read_text())
    assert config["epoch"] == 2 and config["step"] == 20 and config["best_test_elbo"] == -99.5
    assert config["model"]["latent_dim"] == 2 and config["version"]
    assert len(config["files"]["model.safetensors"]["sha256"]) == 64
    # The optimiser state comes back exactly.
    opt2 = torch.optim.Adam(loaded.parameters(), lr=1e-3)
    rng = load_training_state(folder, opt2, step=20)
    assert torch.equal(rng["cpu"], torch.arange(5, dtype=torch.uint8))
    before, after = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert sorted(before) == sorted(after)
    for key in before:
        for field in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(before[key][field], after[key][field]), (key, field)


def test_truncated_file_is_named(saved):
    folder = saved[0]
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"model.safetensors is truncated or corrupted \(read"):
        load_checkpoint(folder)


def test_bit_flip_is_detected(saved):
    folder = saved[0]
    path = folder / "model.safetensors"
    blob = bytearray(path.read_bytes())
    blob[-5] ^= 0x10
    path.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="does not match its sha256"):
        load_checkpoint(folder)


def test_config_that_does_not_match_weights_names_the_tensor(saved, tmp_path):
    folder = saved[0]
    other = VAE(ModelConfig(image_shape=(1, 4, 3), hidden=(8, 6), activation="tanh", latent_dim=3))
    tensors = {k: v for k, v in other.state_dict().items()}
    meta = {
        "format": "vae-explorer",
        "version": "0",
        "progress": "{}",
        "model_config": saved[1].config.to_json(),
    }  # claims latent_dim 2
    (folder / "model.safetensors").write_bytes(checkpoints._serialise(tensors, meta))
    with pytest.raises(CheckpointError, match=r"tensor enc_head.weight has shape \(6, 6\)"):
        load_checkpoint(folder)


def test_pickle_checkpoints_are_refused_without_running_code(tmp_path):
    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    pt = tmp_path / "model.pt"
    pt.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(pt)
    folder = tmp_path / "disguised"
    folder.mkdir()
    torch.save({"weights": Payload()}, folder / "model.safetensors")
    with pytest.raises(CheckpointError, match="refusing to load it"):
        load_checkpoint(folder)
    assert not marker.exists()


def test_failed_write_keeps_the_previous_checkpoint(saved, monkeypatch, disk_full):
    folder, model, opt = saved
    before = (folder / "model.safetensors").read_bytes()
    disk_full()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(folder, model, epoch=3, step=30, optimizer=opt)
    monkeypatch.undo()
    assert (folder / "model.safetensors").read_bytes() == before
    assert not [p for p in folder.iterdir() if ".tmp" in p.name], "temporary file left behind"
    reloaded = load_checkpoint(folder)
    assert reloaded.progress["step"] == 20
    # The training state beside the weights kept is step 20's, under its own name.
    assert sorted(p.name for p in folder.glob("train_state*")) == ["train_state.safetensors"]
    load_training_state(folder, torch.optim.Adam(reloaded.parameters()), step=20)


def test_a_first_checkpoint_that_does_not_fit_leaves_no_training_state(tmp_path, tiny_config, disk_full):
    """The first checkpoint's weights failed on a full disk after its training state was written:
    a 2.5 MB train_state.safetensors was left in a folder said to hold no checkpoint."""
    model = VAE(tiny_config)
    disk_full()
    with pytest.raises(OSError, match="No space"):
        optimizer = torch.optim.Adam(model.parameters())
        save_checkpoint(tmp_path / "run", model, epoch=1, step=10, optimizer=optimizer)
    assert list((tmp_path / "run").iterdir()) == []


def test_resume_without_matching_state_says_so(saved):
    folder, model, _ = saved
    with pytest.raises(CheckpointError, match="no training state for step 99"):
        load_training_state(folder, torch.optim.Adam(model.parameters()), step=99)


def test_shipped_names_and_missing_paths(tmp_path, monkeypatch, saved):
    monkeypatch.setenv("VAE_EXPLORER_PRETRAINED", str(tmp_path))
    assert checkpoints.pretrained_names() == ["run"]
    assert load_checkpoint("run").config.latent_dim == 2
    with pytest.raises(CheckpointError, match=r"shipped model \(run\)"):
        load_checkpoint("no-such-model")


def test_optimizer_implementation_flags_come_from_the_resuming_machine(tmp_path, tiny_config):
    model = VAE(tiny_config)
    fused = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    model(torch.rand(3, 1, 4, 3))[0].sum().backward()
    fused.step()
    save_checkpoint(tmp_path / "r", model, step=1, optimizer=fused)
    plain = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=False)
    load_training_state(tmp_path / "r", plain, step=1)
    assert not plain.param_groups[0]["fused"] and plain.param_groups[0]["foreach"] is False
    assert torch.equal(
        plain.state[model.enc_head.weight]["exp_avg"], fused.state[model.enc_head.weight]["exp_avg"]
    )


def test_a_config_claiming_a_huge_network_is_refused_before_it_is_built(tmp_path, tiny_model, monkeypatch):
    """A 54 KB checkpoint whose config claims hidden=(20000, 20000): refused from the file's
    tensor shapes, without building (allocating) the 4 GB network: no VAE is ever made."""
    import json

    from explorer.checkpoints import _serialise, atomic_write

    built = []  # the devices every VAE was built on: "meta" (shapes only, no memory) or real

    def recording(config):
        model = VAE(config)
        built.append(next(model.parameters()).device.type)
        return model

    monkeypatch.setattr(checkpoints, "VAE", recording)

    big = ModelConfig(image_shape=(1, 4, 3), hidden=(20_000, 20_000), latent_dim=2)
    meta = {"format": "vae-explorer", "model_config": json.dumps(big.to_dict()), "progress": "{}"}
    folder = tmp_path / "liar"
    folder.mkdir()
    atomic_write(folder / "model.safetensors", _serialise(tiny_model.float().state_dict(), meta))
    with pytest.raises(
        CheckpointError, match=r"does not match its config: tensor encoder.0.weight has shape"
    ):
        load_checkpoint(folder)
    assert built == ["meta"]  # its shapes were worked out; the network itself was never built


def test_weights_that_are_not_finite_are_refused(tmp_path, tiny_model):
    model = tiny_model.float()
    with torch.no_grad():
        model.dec_head.bias[0] = float("nan")
    save_checkpoint(tmp_path / "nan", model)
    with pytest.raises(CheckpointError, match="not finite.*dec_head.bias.*diverged"):
        load_checkpoint(tmp_path / "nan")


def test_a_config_json_that_tells_another_story_is_refused(saved):
    """Hand edits of config.json are not silently ignored by one command and obeyed by another."""
    folder, _, _ = saved
    path = folder / "config.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "model": {**record["model"], "hidden": [64, 64]}}))
    with pytest.raises(CheckpointError, match=r"config.json does not match model.safetensors: .*hidden"):
        load_checkpoint(folder)
    path.write_text(json.dumps({**record, "train": {"dataset": "fashion-mnist"}}))
    with pytest.raises(CheckpointError, match="images are \\(1, 4, 3\\), but fashion-mnist's are"):
        load_checkpoint(folder)
    path.unlink()  # no record at all: the weights' own is used
    assert load_checkpoint(folder).config.hidden == (8, 6)


def test_weights_and_config_json_name_the_same_dataset(tmp_path):
    model = VAE(ModelConfig(hidden=(8,)))
    save_checkpoint(tmp_path / "r", model, train_config={"dataset": "mnist"})
    path = tmp_path / "r" / "config.json"
    path.write_text(path.read_text().replace('"mnist"', '"fashion-mnist"'))
    with pytest.raises(CheckpointError, match="trained on fashion-mnist, its weights on mnist"):
        load_checkpoint(tmp_path / "r")
