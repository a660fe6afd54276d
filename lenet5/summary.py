"""``lenet5 summary``: the paper's accounting of LeNet-5, layer by layer (Sec. II-B, Fig. 11)."""

from __future__ import annotations

from .model import LeNet5, layer_table

PAPER_CONNECTIONS = 340_908  # Sec. II-B: 340,068 up to F6 + 840 RBF connections
PAPER_PARAMS_TOTAL = 60_000
PAPER_MACS = 401_000  # Fig. 11, "about 401,000 multiply-adds"


def summary(model: LeNet5 | None = None) -> dict:
    rows = layer_table(model)
    totals = {k: sum(r[k] for r in rows) for k in ("params", "connections", "macs")}
    return {
        "layers": rows,
        "totals": totals,
        "paper": {"params": PAPER_PARAMS_TOTAL, "connections": PAPER_CONNECTIONS, "macs": PAPER_MACS},
    }


def format_summary(info: dict) -> str:
    head = f"{'layer':<7} {'maps x size':>12} {'kernel':>7} {'params':>8} {'connections':>12} {'MACs':>9}"
    lines = [head, "-" * len(head)]
    for r in info["layers"]:
        lines.append(
            f"{r['layer']:<7} {str(r['maps']) + ' @ ' + r['size']:>12} {r['kernel']:>7} {r['params']:>8,} "
            f"{r['connections']:>12,} {r['macs']:>9,}"
        )
    t, p = info["totals"], info["paper"]
    lines.append("-" * len(head))
    lines.append(f"{'total':<7} {'':>12} {'':>7} {t['params']:>8,} {t['connections']:>12,} {t['macs']:>9,}")
    lines.append(
        f"{'paper':<7} {'':>12} {'':>7} {p['params']:>8,} {p['connections']:>12,} {'~' + format(p['macs'], ','):>9}"
    )
    lines.append("")
    lines.append(
        "connections: (inputs per unit + 1 bias) x units, as the paper counts them; 340,068 up to F6 + 840 RBF."
    )
    lines.append(
        "MACs: one per weight use (subsampling: 4 adds + 1 multiply per unit; RBF: one per squared difference). "
        "The paper's ~401,000 (Fig. 11) does not state its counting; see PAPER_NOTES.md."
    )
    return "\n".join(lines)
