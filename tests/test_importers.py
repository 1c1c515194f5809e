"""W&B CSV and TensorBoard importers: exact rows, and errors that name file, line and column."""

from __future__ import annotations

import math
import sys

import pytest

from scaling_ladder.errors import InputError, LadderError
from scaling_ladder.observations.importers import parse_mapping, read_tensorboard, read_wandb_csv

HISTORY = """\
_step,_runtime,_timestamp,tokens_seen,train/loss,eval/c4_loss
1000,61.2,1717000000,4096000,3.91,
2000,122.0,1717000061,8192000,3.52,3.60
3000,183.1,1717000122,12288000,3.30,
4000,244.0,1717000183,16384000,3.21,3.25
"""
MAP = {"step": "_step", "tokens": "tokens_seen", "train": "train/loss", "val/c4": "eval/c4_loss"}

PANEL = """\
Step,small - eval/c4_loss,small - eval/c4_loss__MIN,small - eval/c4_loss__MAX,\
big - eval/c4_loss,big - eval/c4_loss__MIN,big - eval/c4_loss__MAX
100,4.0,3.9,4.1,3.8,3.7,3.9
200,3.5,3.4,3.6,,,
300,3.2,3.1,3.3,3.0,2.9,3.1
"""


def write(tmp_path, text, name="gpt-125m.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def rows(obs, *cols):
    frame = obs.frame.sort_values(["run", "metric", "tokens"])
    return [tuple(r) for r in frame[list(cols)].itertuples(index=False)]


def test_parse_mapping_splits_on_commas_and_first_equals():
    assert parse_mapping("step=_step, train=train/loss,val/c4=eval/c4_loss") == {
        "step": "_step", "train": "train/loss", "val/c4": "eval/c4_loss"}


def test_parse_mapping_rejects_an_item_without_equals():
    with pytest.raises(InputError, match='--map "train" is not key=name'):
        parse_mapping("train,val/c4=eval/c4_loss")


def test_wandb_history_gives_one_row_per_logged_cell(tmp_path):
    obs = read_wandb_csv(write(tmp_path, HISTORY), mapping=MAP, params=124_000_000)
    assert rows(obs, "run", "metric", "tokens", "value", "final") == [
        ("gpt-125m", "train", 4096000.0, 3.91, False),
        ("gpt-125m", "train", 8192000.0, 3.52, False),
        ("gpt-125m", "train", 12288000.0, 3.30, False),
        ("gpt-125m", "train", 16384000.0, 3.21, True),
        ("gpt-125m", "val/c4", 8192000.0, 3.60, False),
        ("gpt-125m", "val/c4", 16384000.0, 3.25, True),
    ]
    f = obs.frame
    assert set(f["experiment"]) == {"gpt-125m"} and set(f["recipe"]) == {"default"}
    assert set(f["params"]) == {124_000_000} and set(f["kind"]) == {"loss"}
    assert obs.set_aside == ()
    assert obs.sources == (str(tmp_path / "gpt-125m.csv"),)


def test_wandb_tokens_from_steps_when_no_tokens_column(tmp_path):
    mapping = {"train": "train/loss"}
    obs = read_wandb_csv(write(tmp_path, HISTORY), mapping=mapping, params=10**8,
                         tokens_per_step=512, run="r1", experiment="e", recipe="web")
    assert rows(obs, "run", "tokens", "step") == [
        ("r1", 512_000.0, 1000), ("r1", 1_024_000.0, 2000), ("r1", 1_536_000.0, 3000),
        ("r1", 2_048_000.0, 4000)]
    assert set(obs.frame["experiment"]) == {"e"} and set(obs.frame["recipe"]) == {"web"}
    assert list(obs.frame["flops"]) == [6 * 10**8 * t for t in obs.frame["tokens"]]


def test_wandb_panel_export_gives_one_run_per_column_group(tmp_path):
    obs = read_wandb_csv(write(tmp_path, PANEL, "panel.csv"), mapping={"val/c4": "eval/c4_loss"},
                         params=["small=1e7", "b*=3e7"], tokens_per_step=1000)
    assert rows(obs, "run", "tokens", "value", "final") == [
        ("big", 100_000.0, 3.8, False), ("big", 300_000.0, 3.0, True),
        ("small", 100_000.0, 4.0, False), ("small", 200_000.0, 3.5, False),
        ("small", 300_000.0, 3.2, True)]
    assert sorted(set(rows(obs, "run", "params"))) == [("big", 3 * 10**7), ("small", 10**7)]


def test_wandb_panel_export_keeps_only_the_named_run(tmp_path):
    obs = read_wandb_csv(write(tmp_path, PANEL, "panel.csv"), mapping="val/c4=eval/c4_loss",
                         params=10**7, tokens_per_step=1000, run="big")
    assert set(obs.frame["run"]) == {"big"} and len(obs) == 2


def test_wandb_panel_export_rejects_an_unknown_run(tmp_path):
    with pytest.raises(InputError, match='no run "bigg".*choose one of big, small'):
        read_wandb_csv(write(tmp_path, PANEL, "panel.csv"), mapping="val/c4=eval/c4_loss",
                       params=10**7, tokens_per_step=1000, run="bigg")


def test_wandb_misspelt_column_suggests_the_real_one(tmp_path):
    path = write(tmp_path, HISTORY)
    with pytest.raises(InputError) as err:
        read_wandb_csv(path, mapping={**MAP, "train": "train/los"}, params=10**8)
    assert str(err.value) == (f'{path}, line 1, column "train/los": no such column (mapped to '
                              'train); did you mean train=train/loss?')


def test_wandb_panel_misspelt_metric_suggests_the_metric_name(tmp_path):
    with pytest.raises(InputError, match="did you mean val/c4=eval/c4_loss"):
        read_wandb_csv(write(tmp_path, PANEL, "panel.csv"), mapping="val/c4=eval/c4_los",
                       params=10**7, tokens_per_step=1000, same_size=True)


def test_wandb_non_numeric_cell_names_line_and_column(tmp_path):
    path = write(tmp_path, HISTORY.replace("3.30", "3.3x"))
    with pytest.raises(InputError) as err:
        read_wandb_csv(path, mapping=MAP, params=10**8)
    assert str(err.value).startswith(f'{path}, line 4, column "train/loss": "3.3x" is not a '
                                     "number; fix the cell")


def test_wandb_without_tokens_or_tokens_per_step_is_an_error(tmp_path):
    with pytest.raises(InputError, match="no token counts for run gpt-125m; map tokens=.* "
                                         "or give --tokens-per-step"):
        read_wandb_csv(write(tmp_path, HISTORY), mapping={"train": "train/loss"}, params=10**8)


def test_wandb_without_params_is_an_error(tmp_path):
    with pytest.raises(InputError, match="no parameter count for run gpt-125m; give --params N"):
        read_wandb_csv(write(tmp_path, HISTORY), mapping=MAP)


def test_wandb_params_from_a_column_logged_once(tmp_path):
    text = HISTORY.replace("_step,", "_step,n_params,").replace("\n1000,", "\n1000,5e7,")
    text = "\n".join(line if "n_params" in line or line.startswith("1000") or not line
                     else line.replace(",", ",,", 1) for line in text.split("\n"))
    obs = read_wandb_csv(write(tmp_path, text), mapping={**MAP, "params": "n_params"})
    assert set(obs.frame["params"]) == {50_000_000} and len(obs) == 6


def test_wandb_missing_step_column_is_an_error(tmp_path):
    text = HISTORY.replace("_step", "iteration")
    with pytest.raises(InputError, match='column "_step": no such column .*map step= one of'):
        read_wandb_csv(write(tmp_path, text), mapping={"train": "train/loss"}, params=10**8,
                       tokens_per_step=1)


def test_wandb_empty_tokens_where_a_metric_was_logged_names_the_line(tmp_path):
    path = write(tmp_path, HISTORY.replace("12288000", ""))
    with pytest.raises(InputError, match='line 4, column "tokens_seen": is empty where '
                                         '"train/loss" has a value'):
        read_wandb_csv(path, mapping=MAP, params=10**8)


def test_wandb_perplexity_is_converted_to_loss(tmp_path):
    text = "_step,ppl\n10,20.0\n20,12.5\n"
    obs = read_wandb_csv(write(tmp_path, text), mapping="val/web=ppl", params=10**6,
                         tokens_per_step=100, kind="perplexity")
    assert list(obs.frame["value"]) == pytest.approx([math.log(20.0), math.log(12.5)])
    assert set(obs.frame["kind"]) == {"loss"}


def test_wandb_downstream_metrics_are_accuracies(tmp_path):
    text = "_step,train/loss,eval/hellaswag_acc\n10,3.0,0.31\n20,2.8,0.35\n"
    obs = read_wandb_csv(write(tmp_path, text), params=10**6, tokens_per_step=100,
                         mapping="train=train/loss,ds/hellaswag=eval/hellaswag_acc")
    assert rows(obs, "metric", "kind", "value") == [
        ("ds/hellaswag", "accuracy", 0.31), ("ds/hellaswag", "accuracy", 0.35),
        ("train", "loss", 3.0), ("train", "loss", 2.8)]


def test_wandb_nan_values_and_step_zero_are_set_aside_and_counted(tmp_path):
    text = "_step,train/loss\n0,10.9\n10,NaN\n20,3.1\n30,2.9\n"
    obs = read_wandb_csv(write(tmp_path, text), mapping="train=train/loss", params=10**6,
                         tokens_per_step=100)
    assert rows(obs, "tokens", "value") == [(2000.0, 3.1), (3000.0, 2.9)]
    assert obs.set_aside == (("values NaN or infinite", 1), ("checkpoints at 0 tokens", 1))


def test_wandb_bad_mapping_key_suggests_a_metric_name(tmp_path):
    with pytest.raises(InputError, match='mapping key "trian" is not a metric name.*"train"'):
        read_wandb_csv(write(tmp_path, HISTORY), mapping="trian=train/loss", params=10**8,
                       tokens_per_step=1)


def test_wandb_negative_loss_error_names_the_source_line(tmp_path):
    path = write(tmp_path, HISTORY.replace("3.52", "-3.52"))
    with pytest.raises(InputError, match=r'line 3, column "value": loss -3\.52 is not positive'):
        read_wandb_csv(path, mapping=MAP, params=10**8)


# ------------------------------------------------------------------------------ TensorBoard


def write_events(run_dir, scalars, tensors=()):
    """Real event files: ``scalars``/``tensors`` are (tag, step, value) triples."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(run_dir))
    for tag, step, value in scalars:
        value = summary_pb2.Summary.Value(tag=tag, simple_value=value)
        writer.add_event(event_pb2.Event(wall_time=1.0, step=step,
                                         summary=summary_pb2.Summary(value=[value])))
    plugin = summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
    for tag, step, value in tensors:  # TF2 style: a float tensor, no simple_value
        tensor = TensorProto(dtype=2, double_val=[value], tensor_shape=TensorShapeProto())
        value = summary_pb2.Summary.Value(
            tag=tag, tensor=tensor, metadata=summary_pb2.SummaryMetadata(plugin_data=plugin))
        writer.add_event(event_pb2.Event(wall_time=1.0, step=step,
                                         summary=summary_pb2.Summary(value=[value])))
    writer.close()


def test_tensorboard_reads_one_run_per_directory(tmp_path):
    pytest.importorskip("tensorboard")
    write_events(tmp_path / "logs" / "125m", [("loss/train", 100, 3.5), ("loss/train", 200, 3.0),
                                              ("loss/val_c4", 200, 3.25)])
    write_events(tmp_path / "logs" / "350m", [("loss/train", 100, 3.25), ("loss/train", 200, 2.75)])
    obs = read_tensorboard(tmp_path / "logs", mapping="train=loss/train", params=10**8,
                           tokens_per_step=1000, same_size=True)
    assert rows(obs, "run", "metric", "step", "tokens", "value", "final") == [
        ("125m", "train", 100, 100_000.0, 3.5, False), ("125m", "train", 200, 200_000.0, 3.0, True),
        ("350m", "train", 100, 100_000.0, 3.25, False),
        ("350m", "train", 200, 200_000.0, 2.75, True)]
    assert set(obs.frame["experiment"]) == {"logs"}
    assert obs.sources == (str(tmp_path / "logs"),)


def test_tensorboard_tokens_and_params_from_tags_and_tensor_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    write_events(tmp_path / "run", [("tokens", 10, 4096.0), ("tokens", 20, 8192.0),
                                    ("n_params", 0, 1_000_000.0)],
                 tensors=[("val/c4", 10, 3.5), ("val/c4", 20, 3.125)])
    obs = read_tensorboard(tmp_path / "run", mapping="val/c4=val/c4,tokens=tokens,params=n_params")
    assert rows(obs, "run", "tokens", "value", "params") == [
        ("run", 4096.0, 3.5, 1_000_000), ("run", 8192.0, 3.125, 1_000_000)]


def test_tensorboard_missing_tag_lists_closest_tags_first(tmp_path):
    pytest.importorskip("tensorboard")
    write_events(tmp_path / "a", [("lr", 1, 1e-3), ("loss/train", 1, 3.0), ("grad_norm", 1, 1.0)])
    with pytest.raises(InputError) as err:
        read_tensorboard(tmp_path, mapping="train=loss/trian", params=10**8, tokens_per_step=1)
    assert str(err.value) == (f'{tmp_path / "a"}: no scalar tag "loss/trian" (mapped to train); '
                              "map train= one of this run's tags: loss/train, lr, grad_norm")


def test_tensorboard_tokens_missing_at_a_step_is_an_error(tmp_path):
    pytest.importorskip("tensorboard")
    write_events(tmp_path / "a", [("tok", 1, 100.0), ("loss", 1, 3.0), ("loss", 2, 2.9)])
    with pytest.raises(InputError, match='"tok" has no value at step 2'):
        read_tensorboard(tmp_path, mapping="train=loss,tokens=tok", params=10**8)


def test_tensorboard_bad_value_error_names_run_and_step(tmp_path):
    pytest.importorskip("tensorboard")
    write_events(tmp_path / "a", [("loss", 1, 3.0), ("loss", 7, -1.0)])
    with pytest.raises(InputError, match=r'a, column "value": at step 7, loss -1.0 is not pos'):
        read_tensorboard(tmp_path, mapping="train=loss", params=10**8, tokens_per_step=1)


def test_tensorboard_without_event_files_is_an_error(tmp_path):
    pytest.importorskip("tensorboard")
    with pytest.raises(InputError, match="holds no events.out.tfevents"):
        read_tensorboard(tmp_path, mapping="train=loss", params=10**8, tokens_per_step=1)


def test_tensorboard_missing_says_how_to_install(tmp_path, monkeypatch):
    name = "tensorboard.backend.event_processing.event_accumulator"
    monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(LadderError, match=r'pip install "scaling-ladder\[tb\]"') as err:
        read_tensorboard(tmp_path, mapping="train=loss", params=10**8, tokens_per_step=1)
    assert isinstance(err.value, ImportError)


def test_wandb_panel_with_a_tokens_axis_needs_no_step_column(tmp_path):
    text = "tokens_seen,a - train/loss,a - train/loss__MIN,a - train/loss__MAX\n5e6,3.0,2.9,3.1\n"
    obs = read_wandb_csv(write(tmp_path, text, "panel.csv"), params=10**7,
                         mapping="tokens=tokens_seen,train=train/loss")
    assert rows(obs, "run", "tokens", "value") == [("a", 5e6, 3.0)]
    assert "step" not in obs.frame
