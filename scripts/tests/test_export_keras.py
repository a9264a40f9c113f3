"""Checks of the Keras exporter, run by `make test` with the cached interpreter.

The Go tests prove that the C API loads the exports and matches Keras; these
check the exporter's own promises on the Python side.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import export_keras
from sharing import once_per_run


def export_question(tmp_path, name="m", seed=1, multi=False, dim=8, classes=3):
    out = str(tmp_path / name)
    rc = export_keras.main(["--arch", "question", "--input-dim", str(dim), "--classes", str(classes),
                            "--out", out, "--seed", str(seed)] + (["--multi-label"] if multi else []))
    assert rc == 0
    return out


def metadata(out):
    with open(os.path.join(out, "assets", export_keras.METADATA_FILE), encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def question(tmp_path_factory):
    """export_question's default export (8 features, 3 classes, seed 1), made
    once for the tests that only read it; each loads its own copy."""
    return str(once_per_run(tmp_path_factory, "question", lambda d: export_question(d, dim=8, classes=3)) / "m")


def test_question_architecture_and_metadata(question):
    meta = metadata(question)
    assert meta["input_dim"] == 8 and meta["input_key"] == "features"
    assert meta["classes"] == ["class_0", "class_1", "class_2"]
    assert meta["label_mode"] == "onehot"
    assert meta["loss"]["class_name"] == "BinaryCrossentropy"
    assert meta["optimizer"]["class_name"] == "Adam"
    assert meta["output_activation"] == "sigmoid"
    assert meta["source_format"] == "arch" and meta["optimizer_state"] == "new"
    assert meta["sparse_input"] is True and meta["signatures"]["predict_sparse"] == "predict_sparse"
    # Input(8) -> Dense(500) -> Dense(250) -> Dense(3)
    assert meta["parameters"] == 8 * 500 + 500 + 500 * 250 + 250 + 250 * 3 + 3
    assert meta["tensorflow_version"] == tf.__version__
    assert meta["keras_version"] == keras.__version__

    loaded = tf.saved_model.load(question)
    assert set(loaded.signatures) >= {"serving_default", "train_step", "evaluate_step",
                                      "set_learning_rate", "get_weights"}
    shapes = {k: tuple(v.shape) for k, v in loaded.signatures["get_weights"]().items()}
    assert shapes["dense_500__kernel"] == (8, 500)
    assert shapes["probabilities__kernel"] == (250, 3)


def test_multi_label_flag(tmp_path):
    assert metadata(export_question(tmp_path, multi=True))["label_mode"] == "multilabel"


def test_deterministic_given_seed(tmp_path):
    a = tf.saved_model.load(export_question(tmp_path, "a", seed=7)).signatures["get_weights"]()
    b = tf.saved_model.load(export_question(tmp_path, "b", seed=7)).signatures["get_weights"]()
    c = tf.saved_model.load(export_question(tmp_path, "c", seed=8)).signatures["get_weights"]()
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy())
    assert any(not np.array_equal(a[k].numpy(), c[k].numpy()) for k in a)


def test_train_step_matches_keras_train_on_batch(tmp_path):
    """The exported train_step is Keras' own step: same loss and weights."""
    model = export_keras.question_model(8, 3, seed=3)
    out = str(tmp_path / "m")
    export_keras.export(model, out)
    loaded = tf.saved_model.load(out)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.random((16, 8), dtype=np.float32)
        y = (rng.random((16, 3)) > 0.7).astype(np.float32)
        want = model.train_on_batch(x, y)
        got = loaded.signatures["train_step"](features=x, labels=y, sample_weight=np.ones(16, np.float32))
        assert abs(float(got["loss"]) - float(want)) < 1e-5
    weights = loaded.signatures["get_weights"]()
    for v in model.variables:
        np.testing.assert_allclose(weights[export_keras.weight_key(v)].numpy(), np.asarray(v.value), atol=1e-5)


def test_evaluate_step_updates_nothing(question):
    loaded = tf.saved_model.load(question)
    before = {k: v.numpy() for k, v in loaded.signatures["get_weights"]().items()}
    x = np.ones((4, 8), np.float32)
    y = np.zeros((4, 3), np.float32)
    r = loaded.signatures["evaluate_step"](features=x, labels=y, sample_weight=np.ones(4, np.float32))
    assert r["probabilities"].shape == (4, 3) and float(r["loss"]) > 0
    after = loaded.signatures["get_weights"]()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k].numpy())


def test_set_learning_rate(question):
    loaded = tf.saved_model.load(question)
    got = loaded.signatures["set_learning_rate"](learning_rate=tf.constant(0.25))
    assert abs(float(got["learning_rate"]) - 0.25) < 1e-7


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_from_file_keeps_compiled_loss_and_optimizer(tmp_path, capsys, suffix):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="sparse_categorical_crossentropy")
    path = str(tmp_path / ("user" + suffix))
    model.save(path)
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\nbird\n")
    out = str(tmp_path / "exported")
    assert export_keras.main(["--from", path, "--out", out, "--class-names", str(names)]) == 0
    meta = metadata(out)
    assert meta["optimizer"]["class_name"] == "SGD"
    assert abs(meta["optimizer"]["config"]["learning_rate"] - 0.05) < 1e-7
    assert meta["loss"]["class_name"] == "SparseCategoricalCrossentropy"
    assert meta["label_mode"] == "sparse" and meta["labels_dtype"] == "int64"
    assert meta["classes"] == ["cat", "dog", "bird"]
    # Never trained: no optimizer state to keep, and nothing said about it.
    assert meta["optimizer_state"] == "new"
    assert "note" not in capsys.readouterr().err
    x = np.random.default_rng(1).random((6, 5), dtype=np.float32)
    got = tf.saved_model.load(out).signatures["serving_default"](features=x)["probabilities"].numpy()
    np.testing.assert_allclose(got, model.predict(x, verbose=0), atol=1e-6)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_optimizer_state_is_kept_or_reported(tmp_path, capsys, suffix):
    """A trained model's optimizer moments travel with it ("restored"; for a
    Keras 3 .h5 file, which Keras 3 itself cannot train on from, when asked
    with --optimizer-state keep); where the file lacks them
    (include_optimizer=False) the export says so."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy")
    x = np.random.default_rng(1).random((8, 5), dtype=np.float32)
    y = np.eye(3, dtype=np.float32)[np.arange(8) % 3]
    model.train_on_batch(x, y)
    path = str(tmp_path / ("user" + suffix))
    model.save(path)
    out = str(tmp_path / "exported")
    keep = ["--optimizer-state", "keep"] if suffix == ".h5" else []
    assert export_keras.main(["--from", path, "--out", out]) == 0
    assert metadata(out)["optimizer_state"] == ("reset" if suffix == ".h5" else "restored")
    assert export_keras.main(["--from", path, "--out", out] + keep) == 0
    assert metadata(out)["optimizer_state"] == "restored"
    if suffix == ".h5":
        bare = str(tmp_path / "bare.h5")
        keras.saving.save_model(model, bare, include_optimizer=False)
        capsys.readouterr()
        assert export_keras.main(["--from", bare, "--out", out]) == 1
        assert "no compiled loss; pass --loss" in capsys.readouterr().err
        assert export_keras.main(["--from", bare, "--out", out, "--loss", "categorical_crossentropy"]) == 0
        assert metadata(out)["optimizer_state"] == "new"  # no optimizer in the file: a new Adam
    # A file whose moments cannot be matched to the model: said on stderr and in the metadata.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(export_keras, "_split_slot", lambda name: (None, None))
        if suffix == ".h5":
            capsys.readouterr()
            assert export_keras.main(["--from", path, "--out", out] + keep) == 0
            meta = metadata(out)
            assert meta["optimizer_state"] == "fresh" and "unrecognised" in meta["optimizer_state_note"]
            assert "the optimizer's state is not kept" in capsys.readouterr().err


@pytest.mark.parametrize("style", ["keras3", "tf_keras", "tf_keras_legacy"])
def test_slots_matched_by_variable_path_not_order(style):
    """Saved slots land on the variables their names (Keras' variable paths)
    name, whatever order the file lists them in."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="a"), keras.layers.Dense(2, name="b")],
                             name="seq")
    trainable = model.trainable_variables
    names = {"keras3": lambda v, s: f"adam/{v.path.replace('/', '_')}_{s}",
             "tf_keras": lambda v, s: f"Adam/{s[0]}/{'/'.join(v.path.split('/')[-2:])}:0",
             "tf_keras_legacy": lambda v, s: f"Adam/{'/'.join(v.path.split('/')[-2:])}/{s[0]}:0"}[style]
    saved = [("iteration", np.asarray(7, np.int64))]
    for i, v in reversed(list(enumerate(trainable))):  # the reverse of Keras' order
        for j, slot in enumerate(("momentum", "velocity")):
            saved.append((names(v, slot), np.full(v.shape, 10 * i + j, np.float32)))
    opt = keras.optimizers.Adam()
    state, note = export_keras.restore_optimizer_state(opt, trainable, saved)
    assert state == "restored", note
    assert int(opt.iterations) == 7
    for i, v in enumerate(trainable):
        for j, slot in enumerate(("momentum", "velocity")):
            got = [o for o in opt.variables if o.path == f"{opt.name}/{v.path.replace('/', '_')}_{slot}"][0]
            np.testing.assert_array_equal(np.asarray(got), 10 * i + j, err_msg=f"{v.path} {slot}")


def test_flags_override_compiled_optimizer(tmp_path):
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    path = str(tmp_path / "user.keras")
    model.save(path)
    out = str(tmp_path / "exported")
    assert export_keras.main(["--from", path, "--out", out, "--optimizer", "rmsprop", "--learning-rate", "0.01"]) == 0
    meta = metadata(out)
    assert meta["optimizer"]["class_name"] == "RMSprop"
    assert abs(meta["optimizer"]["config"]["learning_rate"] - 0.01) < 1e-7


def test_rejects_multi_input_models(tmp_path, capsys):
    a, b = keras.Input((3,)), keras.Input((2,))
    model = keras.Model([a, b], keras.layers.Dense(1)(keras.layers.Concatenate()([a, b])))
    model.compile(optimizer="adam", loss="mse")
    path = str(tmp_path / "two.keras")
    model.save(path)
    assert export_keras.main(["--from", path, "--out", str(tmp_path / "x")]) == 1
    assert "2 inputs" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "x")


def test_existing_export_is_replaced_whole(tmp_path):
    out = export_question(tmp_path, "m", seed=1)
    export_question(tmp_path, "m", seed=2)
    assert sorted(os.listdir(tmp_path)) == ["m"]
    assert metadata(out)["seed"] == 2


def test_sparse_signatures_match_dense(question):
    loaded = tf.saved_model.load(question)
    x = np.zeros((5, 8), np.float32)
    x[0, 1], x[2, 7], x[2, 0], x[4, 3] = 1, 0.5, 2, 1
    sp = tf.sparse.from_dense(x)
    sig = loaded.signatures
    assert set(sig["predict_sparse"].structured_input_signature[1]) == {"indices", "values", "dense_shape"}
    dense = sig["serving_default"](features=x)["probabilities"].numpy()
    sparse = sig["predict_sparse"](indices=sp.indices, values=sp.values, dense_shape=sp.dense_shape)["probabilities"].numpy()
    np.testing.assert_allclose(sparse, dense, atol=1e-6)
    y = np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1]]
    w = np.ones(5, np.float32)
    d = sig["evaluate_step"](features=x, labels=y, sample_weight=w)
    s = sig["evaluate_step_sparse"](indices=sp.indices, values=sp.values, dense_shape=sp.dense_shape, labels=y, sample_weight=w)
    assert abs(float(d["loss"]) - float(s["loss"])) < 1e-6
    s = sig["train_step_sparse"](indices=sp.indices, values=sp.values, dense_shape=sp.dense_shape, labels=y, sample_weight=w)
    after = sig["evaluate_step"](features=x, labels=y, sample_weight=w)
    assert float(after["loss"]) < float(d["loss"])


def test_vectorizer_travels_with_the_model(tmp_path):
    layer = keras.layers.TextVectorization(max_tokens=8, output_mode="multi_hot")
    layer.adapt(tf.constant(["the cat sat", "the dog ran", "a cat ran"]))
    cfg = export_keras.vectorizer_config(layer)
    assert cfg["vocabulary"][0] == "[UNK]" and cfg["output_mode"] == "multi_hot"
    path = tmp_path / "vec.json"
    path.write_text(json.dumps(cfg))
    width = len(cfg["vocabulary"])
    out = str(tmp_path / "m")
    assert export_keras.main(["--arch", "question", "--input-dim", str(width), "--classes", "2",
                              "--out", out, "--vectorizer", str(path)]) == 0
    assert metadata(out)["vectorizer"] == "vectorizer.json"
    with open(os.path.join(out, "assets", "vectorizer.json"), encoding="utf-8") as f:
        assert json.load(f)["vocabulary"] == cfg["vocabulary"]
    # A vectorizer of another width than the model's input is refused.
    assert export_keras.main(["--arch", "question", "--input-dim", str(width + 1), "--classes", "2",
                              "--out", str(tmp_path / "bad"), "--vectorizer", str(path)]) == 1
    assert not os.path.exists(tmp_path / "bad")


def test_vectorizer_from_a_keras_file(tmp_path):
    layer = keras.layers.TextVectorization(max_tokens=6, output_mode="tf_idf")
    layer.adapt(tf.constant(["the cat sat", "the dog ran", "a cat ran"]))
    holder = keras.Sequential([keras.Input(shape=(), dtype="string"), layer])
    path = str(tmp_path / "vec.keras")
    holder.save(path)
    width = len(layer.get_vocabulary())
    out = str(tmp_path / "m")
    assert export_keras.main(["--arch", "question", "--input-dim", str(width), "--classes", "2",
                              "--out", out, "--vectorizer", path]) == 0
    with open(os.path.join(out, "assets", "vectorizer.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    assert cfg["output_mode"] == "tf_idf" and len(cfg["idf"]) == width
    assert cfg["vocabulary"] == layer.get_vocabulary()


@pytest.mark.parametrize("config, want", [
    ("categorical_crossentropy", "CategoricalCrossentropy"),
    ({"class_name": "CategoricalCrossentropy",  # as tf_keras writes a loss object
      "config": {"reduction": "auto", "name": "categorical_crossentropy", "from_logits": True,
                 "label_smoothing": 0.1, "axis": -1}}, "CategoricalCrossentropy"),
    ({"class_name": "SparseCategoricalCrossentropy",
      "config": {"reduction": "sum_over_batch_size", "name": "scce", "from_logits": False}},
     "SparseCategoricalCrossentropy"),
])
def test_h5_loss_configs(config, want):
    loss = export_keras._h5_loss(config)
    assert type(loss).__name__ == want
    if isinstance(config, dict):
        for k, v in config["config"].items():
            if k not in ("reduction", "name"):
                assert loss.get_config()[k] == v


def test_h5_optimizer_keeps_tf_keras_settings():
    """Keras 3's own .h5 loader turns tf_keras' "Custom>Adam" into a default Adam."""
    opt, dropped = export_keras._h5_optimizer({"class_name": "Custom>Adam", "config": {
        "name": "Adam", "jit_compile": False, "is_legacy_optimizer": False, "learning_rate": 0.01,
        "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6, "amsgrad": True}})
    assert type(opt).__name__ == "Adam" and dropped == []
    cfg = opt.get_config()
    assert abs(cfg["learning_rate"] - 0.01) < 1e-9 and cfg["beta_1"] == 0.8 and cfg["amsgrad"] is True
    # A legacy optimizer's decay, lr / (1 + decay * iterations), is Keras 3's
    # InverseTimeDecay(lr, 1, decay) (held to tf_keras' steps in test_export_layers).
    opt, _ = export_keras._h5_optimizer({"class_name": "Adam", "config": {
        "name": "Adam", "learning_rate": 0.01, "decay": 0.001}})
    sched = opt._learning_rate
    assert type(sched).__name__ == "InverseTimeDecay"
    assert (sched.initial_learning_rate, sched.decay_steps, sched.decay_rate) == (0.01, 1, 0.001)
    # A setting with no Keras 3 counterpart is refused by name, not silently lost.
    with pytest.raises(export_keras.SourceError, match="frobnicate=2"):
        export_keras._h5_optimizer({"class_name": "Adam", "config": {"learning_rate": 0.01, "frobnicate": 2}})


def _values(kind, rng, x):
    """x's non-zeros as presence flags, word counts (1–3) or tf-idf weights."""
    if kind == "counts":
        return x * rng.integers(1, 4, x.shape).astype(np.float32)
    if kind == "tfidf":
        return x * (rng.random(x.shape).astype(np.float32) * 3 + 0.05)
    return x


@pytest.mark.parametrize("kind", ["flags", "counts", "tfidf"])
def test_predict_sparse_csr_matches_keras(tmp_path, kind):
    """predict_sparse computes the first layer as a CSR × dense product
    (metadata sparse_product "csr") and gives Keras' own predictions on the
    dense rows, whatever the values."""
    model = export_keras.question_model(300, 5, seed=3)
    out = str(tmp_path / "m")
    meta = export_keras.export(model, out)
    assert meta["sparse_product"] == "csr"
    assert not [k for k in meta["signatures"] if k.endswith("_binary")]
    rng = np.random.default_rng(0)
    x = _values(kind, rng, (rng.random((9, 300)) < 0.05).astype(np.float32))
    x[4] = 0  # an empty row inside the batch
    x[8] = 0  # and at its end
    want = model.predict(x, verbose=0)
    sig = tf.saved_model.load(out).signatures["predict_sparse"]
    sp = tf.sparse.from_dense(x)
    got = sig(indices=sp.indices, values=sp.values, dense_shape=sp.dense_shape)["probabilities"].numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    # The first layer is one CSR product; Keras' Dense densifies a sparse
    # batch (SparseToDense) and multiplies.
    ops = {n.op for f in sig.graph.as_graph_def().library.function for n in f.node_def}
    assert "SparseMatrixMatMul" in ops and "SparseToDense" not in ops, sorted(ops)
    with pytest.raises(tf.errors.InvalidArgumentError):
        backwards = tf.range(tf.shape(sp.indices)[0] - 1, -1, -1)
        sig(indices=tf.gather(sp.indices, backwards), values=tf.gather(sp.values, backwards),
            dense_shape=sp.dense_shape)


def test_densify_when_two_layers_read_the_input(tmp_path):
    """Two Dense layers reading the input (a wide-and-deep branch): the sparse
    signatures stay and densify the batch in the graph, as Keras does; the
    CSR product, which splits the model at one layer, is not used."""
    inputs = keras.Input(shape=(12,))
    deep = keras.layers.Dense(4, activation="relu")(inputs)
    wide = keras.layers.Dense(3)(inputs)
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Concatenate()([deep, wide]))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    meta = export_keras.export(model, str(tmp_path / "m"))
    assert meta["sparse_input"] is True and "predict_sparse" in meta["signatures"]
    assert meta["sparse_product"] == "densify"


@pytest.mark.parametrize("variant, kind", [("question", "counts"), ("question", "flags"), ("l1l2", "tfidf")])
def test_sparse_csr_steps_match_keras(tmp_path, variant, kind):
    """train_step_sparse (the kernel's gradient as a CSR product with the
    transpose) takes the steps Keras' train_on_batch takes on the dense rows:
    losses and every weight within 1e-4 after three steps, the first layer's
    L1/L2 penalty included (variant l1l2); evaluate_step_sparse gives Keras'
    loss."""
    import keras_variants as kv

    def build():
        if variant == "question":
            return export_keras.question_model(300, 5, seed=3)
        return kv.build(keras, variant)

    model = build()
    out = str(tmp_path / "m")
    meta = export_keras.export(model, out)
    assert meta["sparse_product"] == "csr"
    sig = tf.saved_model.load(out).signatures
    keras_twin = build()  # same seed: the export's starting weights, a fresh optimizer
    dim, classes = int(model.inputs[0].shape[-1]), int(model.outputs[0].shape[-1])
    rng = np.random.default_rng(5)
    for step in range(3):
        x = _values(kind, rng, (rng.random((16, dim)) < 0.1).astype(np.float32))
        x[3] = 0
        y = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, 16)]
        sp = tf.sparse.from_dense(x)
        w = np.ones(16, np.float32)
        got = sig["train_step_sparse"](indices=sp.indices, values=sp.values, dense_shape=sp.dense_shape,
                                       labels=y, sample_weight=w)
        want = float(keras_twin.train_on_batch(x, y))
        assert abs(float(got["loss"]) - want) < 1e-4, (step, float(got["loss"]), want)
    weights = sig["get_weights"]()
    for v in keras_twin.variables:
        np.testing.assert_allclose(weights[export_keras.weight_key(v)].numpy(), v.numpy(), atol=1e-4,
                                   err_msg=v.path)
    x = _values(kind, rng, (rng.random((16, dim)) < 0.1).astype(np.float32))
    y = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, 16)]
    sp = tf.sparse.from_dense(x)
    got = sig["evaluate_step_sparse"](indices=sp.indices, values=sp.values, dense_shape=sp.dense_shape,
                                      labels=y, sample_weight=np.ones(16, np.float32))
    want = float(np.mean(keras.losses.get(keras_twin.loss)(y, keras_twin.predict(x, verbose=0))))
    assert abs(float(got["loss"]) - want) < 1e-5
