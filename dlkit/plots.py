"""PNG plots: training curves, confusion matrices, attention maps, audio with per-step
scores, DET and ROC curves, embeddings in 2-D (matplotlib, Agg backend)."""

import numpy as np

from dlkit import io


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def training_curves(records, path, title="training"):
    """Loss and metric curves per epoch from history.jsonl records; stage changes marked."""
    epochs = [r for r in records if r.get("event") == "epoch"]
    if not epochs:
        return None
    plt = _pyplot()
    keys = sorted({k for r in epochs for k in r if k not in ("event", "epoch", "stage", "time")})
    metrics = sorted({k.removeprefix("val_") for k in keys})
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    x = [r["epoch"] + 1 for r in epochs]
    for ax, metric in zip(axes[0], metrics):
        for key, style in ((metric, "-o"), (f"val_{metric}", "--s")):
            if key in keys:
                ax.plot(x, [r.get(key, np.nan) for r in epochs], style, markersize=3, label=key)
        for i in range(1, len(epochs)):
            if epochs[i]["stage"] != epochs[i - 1]["stage"]:
                ax.axvline(x[i] - 0.5, color="gray", linewidth=0.8, linestyle=":")
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
    return path


def confusion_matrix_plot(matrix, labels, path, title="confusion matrix"):
    """A row-normalised heat map with the counts written in each cell (large counts, such as
    a segmentation's pixels, shortened: 48.2k, 1.31M)."""
    plt = _pyplot()
    matrix = np.asarray(matrix)
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    size = 1.0 + 0.55 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            color = "white" if normalised[i, j] > 0.5 else "black"
            ax.text(j, i, _count(matrix[i, j]), ha="center", va="center", color=color, fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, path)
    return path


def image_grid_plot(images, captions, path, title="", heading="", columns=4):
    """Images in a grid, each with its caption above it (an evaluation's mistakes), under
    "title: heading"; `images`: (h, w, 3) uint8 arrays of any sizes. None, and no file,
    when there is no image."""
    if not len(images):
        return None
    title = f"{title}: {heading}" if title and heading else title or heading
    plt = _pyplot()
    rows = max(1, -(-len(images) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.4 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, captions):
        ax.imshow(image)
        ax.set_title(caption, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    return path


def _count(n):
    """An int in at most five characters or so: 9999, 48.2k, 1M, 30.1M."""
    n = int(n)
    if abs(n) < 10**4:
        return str(n)
    for scale, unit in ((1e3, "k"), (1e6, "M"), (1e9, "G")):
        value = float(f"{n / scale:.3g}")
        if abs(value) < 1000 or unit == "G":
            return f"{value:g}{unit}"


def attention_plot(weights, inputs, outputs, path, title="attention"):
    """Heat map of attention weights: one row per output token, one column per input token.

    Args:
        weights: (len(outputs), >= len(inputs)) array; padding columns are cut off.
        inputs, outputs: lists of str (characters or tokens).
    """
    plt = _pyplot()
    weights = np.asarray(weights)[: len(outputs), : len(inputs)]
    fig, ax = plt.subplots(figsize=(1.2 + 0.28 * len(inputs), 1.0 + 0.3 * len(outputs)))
    image = ax.imshow(weights, cmap="viridis", vmin=0, aspect="auto")
    ax.set_xticks(range(len(inputs)), [c if c != " " else "\u2423" for c in inputs])
    ax.set_yticks(range(len(outputs)), outputs)
    ax.set_xlabel("input")
    ax.set_ylabel("output")
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    return path


def precision_recall_plot(curves, path, title="precision-recall", per_class=None):
    """One precision-recall curve per class (dict label -> {"recall", "precision"})."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for label, curve in curves.items():
        ap = (per_class or {}).get(label, {}).get("ap50")
        ax.plot(curve["recall"], curve["precision"], label=f"{label} {ap:.3f}" if ap is not None else label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, path)
    return path


def audio_scores_plot(
    path, audio, sample_rate, step_times, scores, threshold, events=(), truth=(), labelled=None,
    title="", max_seconds=600.0,
):  # fmt: skip
    """Waveform, spectrogram and a per-step score (e.g. P(trigger)) over time, with the
    threshold, the events that fired (red) and the true positions (green lines; a shaded
    row of `labelled` steps if given). Audio beyond `max_seconds` is left out (said in the
    title), so an hour-long file still plots fast."""
    plt = _pyplot()
    audio = np.asarray(audio, np.float32)
    seconds = len(audio) / sample_rate
    if seconds > max_seconds:
        audio = audio[: int(max_seconds * sample_rate)]
        title = f"{title} (first {max_seconds:.0f} s of {seconds:.0f} s)".strip()
    step_times, scores = np.asarray(step_times), np.asarray(scores)
    keep = step_times <= len(audio) / sample_rate + 1e-9
    step_times, scores = step_times[keep], scores[keep]
    fig, axes = plt.subplots(3, 1, figsize=(10, 7), sharex=True)
    bins = max(1, len(audio) // 4000)  # min/max envelope: a few thousand points at most
    usable = len(audio) // bins * bins
    frames = audio[:usable].reshape(-1, bins)
    t = (np.arange(len(frames)) * bins + bins / 2) / sample_rate
    axes[0].fill_between(t, frames.min(axis=1), frames.max(axis=1), lw=0.3)
    axes[0].set_ylabel("waveform")
    with np.errstate(divide="ignore"):  # digital silence is -inf dB: the colour map's floor
        axes[1].specgram(audio, NFFT=400, Fs=sample_rate, noverlap=240, cmap="magma")
    axes[1].set_ylabel("Hz")
    axes[2].plot(step_times, scores, lw=1, label="score")
    if labelled is not None:
        axes[2].fill_between(
            step_times, 0, np.asarray(labelled)[keep], color="green", alpha=0.25, label="labelled steps"
        )
    axes[2].axhline(threshold, color="red", ls="--", lw=0.8, label="threshold")
    for i, time in enumerate(x for x in truth if x <= len(audio) / sample_rate):
        for ax in axes:
            ax.axvline(
                time, color="green", lw=1.2, alpha=0.8, label="true" if i == 0 and ax is axes[2] else None
            )
    events = [e for e in events if e <= len(audio) / sample_rate]
    if events:
        axes[2].plot(events, [1.02] * len(events), "rv", ms=7, label="detected")
    axes[2].set_ylim(0, 1.08)
    axes[2].set_xlabel("seconds")
    axes[2].legend(loc="upper right", fontsize=8)
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    _save(fig, path)
    return path


def det_plot(curves, path, title="DET"):
    """Miss rate against false accepts per hour, one curve per name in `curves`
    ({name: [{"threshold", "miss_rate", "false_accepts_per_hour"}]}), thresholds marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, det in curves.items():
        x, y = [d["false_accepts_per_hour"] for d in det], [d["miss_rate"] for d in det]
        ax.plot(x, y, marker="o", ms=3, label=name)
        for d in det[::4]:
            ax.annotate(f"{d['threshold']:.2f}", (d["false_accepts_per_hour"], d["miss_rate"]), fontsize=7)
    ax.legend(fontsize=7)
    ax.set_xlabel("false accepts per hour")
    ax.set_ylabel("miss rate")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    return path


def roc_plot(report, path, title="ROC"):
    """Verification ROC (true accepts against false accepts, log scale) from a
    dlkit.metrics.verification report, with the model's operating point."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    far, tar = np.asarray(report["roc"]["far"]), np.asarray(report["roc"]["tar"])
    floor = 1.0 / max(report.get("impostor_pairs", 1000), 1) / 2
    ax.plot(np.maximum(far, floor), tar, label=f"AUC {report['roc_auc']:.4f}, EER {report['eer']:.3f}")
    if "far" in report and "frr" in report:
        ax.plot(
            [max(report["far"], floor)],
            [1 - report["frr"]],
            "o",
            label=f"threshold {report['threshold']:.3f} ({report['threshold_source']})",
        )
    ax.set_xscale("log")
    ax.set_xlabel("false accept rate (impostor pairs)")
    ax.set_ylabel("true accept rate (genuine pairs)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    return path


def embedding_plot(projection, path, title="embeddings"):
    """2-D points ({"points": [[x, y]], "identities": [name]}) coloured by identity; the
    names are listed when there are few."""
    plt = _pyplot()
    points = np.asarray(projection["points"], np.float64).reshape(-1, 2)
    names = list(projection["identities"])
    people = sorted(set(names))
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    colours = plt.get_cmap("tab20" if len(people) > 10 else "tab10")
    for index, person in enumerate(people):
        mine = np.array([name == person for name in names])
        ax.scatter(points[mine, 0], points[mine, 1], s=18, color=colours(index % colours.N), label=person)
    if len(people) <= 12:
        ax.legend(fontsize=7, loc="best")
    ax.set_xlabel("principal component 1")
    ax.set_ylabel("principal component 2")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    return path


def _save(fig, path):
    plt = _pyplot()
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
