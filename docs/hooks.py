"""MkDocs hooks: pages generated from the code and the measured results, never pasted.

- reference/cli.md   from the typer app (the same help text the CLI prints)
- changelog.md       from CHANGELOG.md
- {{ effconvert_gates }}            the gate table and definitions (validate/gates.py, report/explain.py)
- {{ effconvert_support_matrix }}   bench/results/support_matrix.md
- {{ effconvert_executorch_matrix }} bench/results/support_matrix_executorch.md
- {{ effconvert_benchmarks }}       bench/results/latest.md
- {{ effconvert_device }}           bench/results/device.md
- {{ effconvert_gpu }}              bench/results/android_gpu.md
- {{ effconvert_int8_by_family }}   bench/results/int8_by_family.md
- {{ effconvert_options }}          every option: CLI flag, API keyword / plan key, type, default, help (options.py)
- {{ effconvert_targets }}          the target table (targets.py)
"""

from __future__ import annotations

from pathlib import Path

import click
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]


def on_files(files, config):
    files.append(File.generated(config, "reference/cli.md", content=cli_reference()))
    files.append(File.generated(config, "changelog.md", content=(ROOT / "CHANGELOG.md").read_text(encoding="utf-8")))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    for name, render in (
        ("effconvert_gates", gates),
        ("effconvert_support_matrix", support_matrix),
        ("effconvert_executorch_matrix", executorch_matrix),
        ("effconvert_benchmarks", benchmarks),
        ("effconvert_device", device),
        ("effconvert_gpu", android_gpu),
        ("effconvert_int8_by_family", int8_by_family),
        ("effconvert_options", options),
        ("effconvert_targets", targets),
        ("effconvert_snapdragon", snapdragon),
    ):
        token = "{{ " + name + " }}"
        if token in markdown:
            markdown = markdown.replace(token, render())
    return markdown


def cli_reference() -> str:
    import typer

    from effconvert.cli import app

    command = typer.main.get_command(app)
    lines = [
        "# CLI reference",
        "",
        "Generated from the typer app: the text `effconvert COMMAND -h` prints. `effconvert CHECKPOINT ...` "
        "is `effconvert convert CHECKPOINT ...`.",
        "",
    ]
    for name, sub in sorted(command.commands.items()):
        with click.Context(sub, info_name=f"effconvert {name}") as ctx:
            lines += [
                f"## effconvert {name}",
                "",
                (sub.help or "").strip(),
                "",
                "```text",
                f"Usage: {' '.join(sub.collect_usage_pieces(ctx))}".replace("Usage: ", f"effconvert {name} "),
                "",
            ]
            for param in sub.get_params(ctx):
                record = param.get_help_record(ctx)
                if record:
                    lines.append(f"  {record[0]}\n      {record[1]}")
            lines += ["```", ""]
    return "\n".join(lines) + "\n"


def gates() -> str:
    from effconvert.report.explain import GLOSSARY
    from effconvert.validate.gates import DEFAULT_GATES, FP32_NOISE_FACTOR

    names = {
        "max_rel_err": "max rel err at most",
        "psnr_db": "PSNR (dB) at least",
        "top1_agreement": "top-1 (decided inputs) at least",
        "cosine": "cosine at least",
    }
    rows = ["| quant | " + " | ".join(names.values()) + " |", "|---" * (len(names) + 1) + "|"]
    for quant, gate in DEFAULT_GATES.items():
        values = gate.as_dict()
        rows.append(f"| {quant} | " + " | ".join(f"{values[k]:g}" if k in values else "—" for k in names) + " |")
    terms = "\n".join(f"- **{term}**: {meaning}" for term, meaning in GLOSSARY)
    return (
        "Default gates (`effconvert/validate/gates.py`; override any with `--gate psnr=40,top1=0.995`):\n\n"
        + "\n".join(rows)
        + f"\n\nfp32 gate: max rel err ≤ max(1e-4, {FP32_NOISE_FACTOR:g} × PyTorch fp32's own "
        "error against the float64 model on the same inputs), reported as `reference.fp32_noise_floor`.\n\n"
        "The console and report.html print each gate beside the value it judged, e.g. "
        "`PSNR 67.7 dB ≥ 35, top-1 1.000 ≥ 0.99 (over 31 decided inputs; 1 tie left out)`.\n\n" + terms
    )


def options() -> str:
    from effconvert.options import OPTIONS

    rows = [
        "| CLI flag | API keyword and plan key | type | default | applies to | what it does |",
        "|---|---|---|---|---|---|",
    ]
    for o in OPTIONS:
        flag = f"`{o.flag}`" + (f" `{o.short}`" if o.short else "")
        default = ", ".join(map(str, o.default)) if isinstance(o.default, tuple) else o.default
        help_text = (o.help + (f" (`{o.flag}`: {o.off})" if o.off else "")).replace("|", "\\|")
        choices = f": {', '.join(map(str, o.choices))}" if o.choices else ""
        rows.append(f"| {flag} | `{o.name}` | {o.kind} | {default} | {o.applies or 'all'} | {help_text}{choices} |")
    return "\n".join(rows)


def targets() -> str:
    from effconvert.targets import TARGETS

    rows = [
        "| target | artifact | quant modes | validated on | in `all` | device model | sample app |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in TARGETS.values():
        refused = "; ".join(f"not {q}: {why}" for q, why in t.refused)
        rows.append(
            f"| {t.name} | `{t.suffix}` | {', '.join(t.quants)}"
            + (f" ({refused})" if refused else "")
            + f" | runtime/{t.runtime}.py | {'yes' if t.in_all else 'no'} | {t.device or '—'} | "
            + (", ".join(t.platforms) or "—")
            + " |"
        )
    return "\n".join(rows)


def support_matrix() -> str:
    return _results("support_matrix.md")


def executorch_matrix() -> str:
    return _results("support_matrix_executorch.md")


def benchmarks() -> str:
    return _results("latest.md")


def device() -> str:
    return _results("device.md")


def android_gpu() -> str:
    return _results("android_gpu.md")


def int8_by_family() -> str:
    return _results("int8_by_family.md")


def snapdragon() -> str:
    """The measured-error table of docs/results/snapdragon-latency.md (bench/snapdragon_calibration.py)."""
    path = ROOT / "docs" / "results" / "snapdragon-latency.md"
    if not path.exists():
        return "*(no calibration yet: run bench/snapdragon_calibration.py)*"
    text = path.read_text(encoding="utf-8")
    # The first table of the page: its lines up to the first line that is not a table row.
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), len(lines))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def _results(name: str) -> str:
    path = ROOT / "bench" / "results" / name
    return path.read_text(encoding="utf-8") if path.exists() else f"*(no `{name}` yet: run the benchmark)*"
