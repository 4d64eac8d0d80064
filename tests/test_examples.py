"""Every example on the spec page (examples/) runs verbatim and stores what the page says."""

from __future__ import annotations

import gzip
import pickle

from .helpers import EXAMPLES, latest_run_id, load_artifact, query, run_flow


def run_example(name: str, db, *args: str):
    return run_flow(EXAMPLES / f"{name}.py", *args, db=db, top=())


def art(db, flow, step, name, index=None):
    return load_artifact(db, latest_run_id(db, flow), step, name, index)


def test_creating_artifacts(db_path):
    proc = run_example("artifact_example", db_path)
    assert "Accuracy: 0.95" in proc.stdout and "Data: [1, 2, 3, 4, 5]" in proc.stdout
    for step in ("start", "end"):
        assert art(db_path, "ArtifactExample", step, "raw_data") == [1, 2, 3, 4, 5]
        assert art(db_path, "ArtifactExample", step, "model") == {"weights": [0.5, 0.3, 0.2]}
        assert art(db_path, "ArtifactExample", step, "accuracy") == 0.95
        assert art(db_path, "ArtifactExample", step, "metadata") == {
            "version": "1.0", "date": "2024-01-01"}  # fmt: skip
    # plain values are stored as JSON, never as pickles
    encodings = query(
        db_path,
        "select distinct encoding from artifacts where name in "
        "('raw_data', 'model', 'accuracy', 'metadata')",
    )
    assert encodings == [("json",)]


def test_accessing_artifacts(db_path):
    run_example("accessing_artifacts", db_path)
    assert art(db_path, "AccessingArtifacts", "process", "result") == [
        10,
        10,
        20,
        30,
        40,
        50,
        60,
        90,
    ]
    assert art(db_path, "AccessingArtifacts", "end", "data") == [3, 1, 4, 1, 5, 9, 2, 6]


def test_private_artifacts(db_path):
    proc = run_example("private_artifacts", db_path)
    assert "important_data: saved" in proc.stdout
    assert "has _temp_data here: False" in proc.stdout
    assert art(db_path, "PrivateArtifacts", "start", "important_data") == "saved"
    assert query(db_path, "select count(*) from all_artifacts where name = '_temp_data'") == [(0,)]


def test_internal_artifacts_are_recorded_and_readable(db_path):
    run_example("foreach_artifacts", db_path)
    assert art(db_path, "ForeachArtifacts", "start", "_foreach_num_splits") == 3
    assert art(db_path, "ForeachArtifacts", "start", "_success") is True
    info = art(db_path, "ForeachArtifacts", "start", "_graph_info")
    assert info["steps"]["start"]["type"] == "foreach" or "start" in info["steps"]
    assert art(db_path, "ForeachArtifacts", "train", "_foreach_stack", index=0)[0].index == 0


def test_merge_artifacts(db_path):
    proc = run_example("merge_artifacts", db_path)
    assert "{'key': 'value'} from A from B" in proc.stdout
    assert art(db_path, "MergeArtifactsFlow", "join", "shared_config") == {"key": "value"}
    assert art(db_path, "MergeArtifactsFlow", "join", "result_a") == "from A"
    assert art(db_path, "MergeArtifactsFlow", "join", "result_b") == "from B"


def test_selective_merge(db_path):
    run_example("selective_merge", db_path)
    names = {r[0] for r in query(db_path, "select name from all_artifacts where step='join'")}
    assert {"result_a", "result_b"} <= names and "temporary_data" not in names
    names = {r[0] for r in query(db_path, "select name from all_artifacts where step='join_again'")}
    assert {"result_a", "result_b", "result_c"} <= names and "temporary_data" not in names


def test_foreach_artifacts(db_path):
    proc = run_example("foreach_artifacts", db_path)
    assert "Training with lr=0.01" in proc.stdout
    models = art(db_path, "ForeachArtifacts", "join", "all_models")
    assert [m["lr"] for m in models] == [0.01, 0.001, 0.0001]
    accuracies = [art(db_path, "ForeachArtifacts", "train", "accuracy", index=i) for i in range(3)]
    assert art(db_path, "ForeachArtifacts", "join", "best_accuracy") == max(accuracies)


def test_compression(db_path):
    proc = run_example("compression", db_path)
    assert "Rows: 10000" in proc.stdout
    data = art(db_path, "CompressionFlow", "start", "compressed_data")
    assert len(pickle.loads(gzip.decompress(data))["rows"]) == 10000


def test_checkpointing(db_path):
    run_example("checkpointing", db_path)
    checkpoint = art(db_path, "CheckpointingFlow", "train", "checkpoint")
    assert [round(w, 2) for w in checkpoint["weights"]] == [0.91, 0.91]


def test_artifact_collections(db_path):
    run_example("artifact_collections", db_path)
    results = art(db_path, "ArtifactCollections", "analyze", "results")
    assert results["metrics"] == {"accuracy": 0.95, "loss": 0.05}
    assert set(results) == {"metrics", "plots", "tables"}


def test_inspecting_artifacts_with_the_client(db_path):
    import subprocess
    import sys

    run_example("my_flow", db_path, "--alpha", "0.3")
    run_id = latest_run_id(db_path, "MyFlow")
    proc = subprocess.run([sys.executable, str(EXAMPLES / "inspect_artifacts.py"), run_id],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "0.93" and lines[2] == "0.93"
    assert lines[1] == "{'weights': [0.5, 0.3, 0.2], 'alpha': 0.3}"
    sha = query(db_path, "select sha from artifacts where name = 'accuracy'")[0][0]
    assert lines[3] == sha
    assert lines[4].startswith("20")  # a datetime
