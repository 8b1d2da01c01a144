"""The JSON ``classes`` key holds exactly the numbers of the table's class view.

Both come from one report field (``Report.classes``); the expected numbers are derived here
from the data (argmax counts) and from torch (each class's mean of ``reduction='none'``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from losscli.cli import app

runner = CliRunner()
RNG = np.random.default_rng(21)
CLASSES = 4


def _files(tmp_path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    logits = RNG.normal(size=(60, CLASSES)).astype(np.float32)
    labels = RNG.integers(0, CLASSES, size=60)
    labels[labels == 3] = 2  # class 3 is never the target: its recall and mean loss are null
    labels[[5, 17]] = -100  # ignored
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "labels.npy", labels)
    return [str(tmp_path / "logits.npy"), str(tmp_path / "labels.npy")], logits, labels


def test_json_classes_are_the_data_and_torchs_numbers(tmp_path: Path) -> None:
    files, logits, labels = _files(tmp_path)
    result = runner.invoke(app, ["compute", "cross-entropy", *files, "-f", "json"])
    assert result.exit_code == 0, result.stderr
    classes = json.loads(result.stdout)["classes"]
    kept = labels != -100
    predicted = logits.argmax(axis=1)[kept]
    true = labels[kept]
    losses = F.cross_entropy(
        torch.from_numpy(logits), torch.from_numpy(labels), reduction="none"
    ).double()[torch.from_numpy(kept)]
    assert classes["classes"] == CLASSES and classes["names"] is None
    assert classes["true"] == np.bincount(true, minlength=CLASSES).tolist()
    assert classes["predicted"] == np.bincount(predicted, minlength=CLASSES).tolist()
    correct = np.bincount(true[predicted == true], minlength=CLASSES)
    assert classes["correct"] == correct.tolist()
    assert classes["accuracy"] == correct.sum() / kept.sum()
    assert classes["total"] == int(kept.sum()) and classes["ignored"] == 2
    assert classes["recall"][3] is None and classes["mean_loss"][3] is None
    for label in range(3):
        assert classes["recall"][label] == correct[label] / (true == label).sum()
        expected = float(losses[torch.from_numpy(true == label)].mean())
        assert abs(classes["mean_loss"][label] - expected) <= 1e-12 * abs(expected)


def test_the_table_shows_the_json_numbers(tmp_path: Path) -> None:
    files, _, _ = _files(tmp_path)
    record = json.loads(
        runner.invoke(app, ["compute", "cross-entropy", *files, "-f", "json"]).stdout
    )["classes"]
    table = runner.invoke(
        app, ["compute", "cross-entropy", *files, "--no-color"], env={"COLUMNS": "120"}
    ).stdout
    view = table[table.index("predicted (argmax) vs true classes") :]
    rows = {
        int(cells[0]): cells[1:]
        for cells in (line.split() for line in view.splitlines())
        if len(cells) == 6 and cells[0].isdigit()
    }
    assert sorted(rows) == list(range(CLASSES))
    for label, cells in rows.items():
        recall, mean = record["recall"][label], record["mean_loss"][label]
        assert cells == [
            str(record["true"][label]),
            str(record["predicted"][label]),
            str(record["correct"][label]),
            "-" if recall is None else f"{recall:.0%}",
            "-" if mean is None else f"{mean:.4g}",
        ]
    correct = sum(record["correct"])
    assert f"accuracy {correct}/{record['total']} = {correct / record['total']:.1%}" in view
    assert f"{record['ignored']} ignored" in view


def test_class_names_come_from_a_header_not_from_column_numbers(tmp_path: Path) -> None:
    logits = RNG.normal(size=(9, 3))
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2])
    np.savetxt(tmp_path / "plain.csv", logits, delimiter=",")
    np.savetxt(tmp_path / "named.csv", logits, delimiter=",", header="cat,dog,bird", comments="")
    np.savetxt(tmp_path / "labels.txt", labels, fmt="%d")
    for name, expected in (("plain.csv", None), ("named.csv", ["cat", "dog", "bird"])):
        argv = ["compute", "cross-entropy", str(tmp_path / name), str(tmp_path / "labels.txt")]
        record = json.loads(runner.invoke(app, [*argv, "-f", "json"]).stdout)
        assert record["classes"]["names"] == expected
        table = runner.invoke(app, [*argv, "--no-color"], env={"COLUMNS": "120"}).stdout
        view = table[table.index("predicted (argmax) vs true classes") :]
        first = next(line.split() for line in view.splitlines() if line.strip().startswith("0"))
        assert first[:2] == (["0", "cat"] if expected else ["0", "3"])
