"""The ``lenet5`` command. Each subcommand parses its flags and calls one library function."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .errors import Lenet5Error

EPILOG = "Defaults are the paper's (LeCun et al. 1998). Docs: README.md and PAPER_NOTES.md."


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dataset", choices=["mnist", "fashion-mnist"], default="mnist", help="dataset (default: %(default)s)"
    )
    p.add_argument("--data-dir", help="dataset cache folder (default: $LENET5_DATA or ~/.cache/lenet5)")


def _add_inference_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument(
        "--engine",
        choices=["auto", "numba", "torch"],
        default="auto",
        help="how LeNet-5 runs on the CPU: the compiled engine (numba; the first use compiles it once, 5-10 s), "
        "the PyTorch modules (torch), or the engine where it applies (auto)",
    )


def _add_weights_args(p: argparse.ArgumentParser, several: bool = False) -> None:
    g = p.add_mutually_exclusive_group()
    if several:
        g.add_argument(
            "--weights",
            action="append",
            help="a weights.pt or checkpoint.pt file from a training run; repeat it to score an ensemble "
            "(the sum of the networks' penalties)",
        )
    else:
        g.add_argument("--weights", help="a weights.pt or checkpoint.pt file from a training run")
    g.add_argument(
        "--pretrained",
        nargs="?",
        const="paper",
        default=None,
        choices=["paper", "paper-distort"],
        help="use the shipped weights: 'paper' (default when no --weights) or 'paper-distort'",
    )


def cmd_data(args) -> int:
    from .data import ensure_dataset

    files = ensure_dataset(args.dataset, args.data_dir, quiet=args.json)
    if args.json:
        print(json.dumps(files.to_json()))
    else:
        print(f"{files.dataset}: verified in {files.directory}")
        for name, path in files.files.items():
            print(f"  {path}  ({files.sources[name]})")
    return 0


def cmd_summary(args) -> int:
    from .summary import format_summary, summary

    info = summary()
    print(json.dumps(info) if args.json else format_summary(info))
    return 0


def _train_config(args):
    from .config import ModelConfig, TrainConfig

    try:
        config = TrainConfig(
            dataset=args.dataset,
            epochs=args.epochs,
            batch_size=args.batch_size,
            loss=args.loss,
            map_j=args.j,
            mu=args.mu,
            eta=args.eta,
            eta_scale=args.eta_scale,
            hessian_samples=args.hessian_samples,
            batch_lr_scale=args.batch_lr_scale,
            distort=args.distort,
            train_subset=args.train_subset,
            test_subset=args.test_subset,
            train_eval=not args.no_train_eval,
            engine=args.engine,
            seed=args.seed,
            device=args.device,
            threads=args.threads,
            data_dir=args.data_dir,
            out_dir=args.out_dir,
            run_name=args.run_name,
            optimizer=args.optimizer,
            lr=args.lr,
            schedule=args.schedule,
            weight_decay=args.weight_decay,
            label_smoothing=args.label_smoothing,
            augment=args.augment,
            rotate=args.rotate,
            elastic=args.elastic,
            noise=args.noise,
            train_file=getattr(args, "train_file", None),
            model=ModelConfig(
                arch=args.arch, init=args.init, c3_table=args.c3_table, subsample_init=args.subsample_init
            ),
        )
    except ValueError as e:
        raise Lenet5Error(str(e)) from None
    if args.dry_run:  # the real pipeline end to end on tiny data
        config.epochs, config.train_subset, config.test_subset = min(config.epochs, 2), 600, 500
        config.hessian_samples = min(config.hessian_samples, 100)
    return config


def cmd_train(args) -> int:
    from .train import train

    if args.resume:
        if not Path(args.resume, "config.json").is_file():
            raise Lenet5Error(f"{args.resume}: not a run directory (no config.json)")
        result = train(None, resume=args.resume, progress=not args.quiet)
    else:
        result = train(_train_config(args), progress=not args.quiet)
    if args.json and result["test"] is not None:  # under torchrun only rank 0 has the final result
        print(
            json.dumps(
                {
                    "run_dir": result["run_dir"],
                    "error_rate": result["test"]["error_rate"],
                    "misses": result["test"]["misses"],
                    "n": result["test"]["n"],
                    "engine": result["engine"],
                }
            )
        )
    return 0


def cmd_boost(args) -> int:
    from .boost import train_boosted

    config = _train_config(args)
    train_boosted(config, size=600 if args.dry_run else args.set_size, progress=not args.quiet)
    return 0


def cmd_knn(args) -> int:
    import time

    from .baselines import knn_predict
    from .data import load_mnist
    from .fileio import atomic_write_text
    from .train import machine_info, resolve_device

    device = resolve_device(args.device)
    x_train, y_train = load_mnist("train", args.data_dir, args.dataset, quiet=args.json)
    x_test, y_test = load_mnist("test", args.data_dir, args.dataset, quiet=args.json)
    t0 = time.perf_counter()
    pred = knn_predict(x_train.to(device), y_train.to(device), x_test.to(device), k=args.k).cpu()
    misses = int((pred != y_test).sum())
    result = {
        "error_rate": 100.0 * misses / len(y_test),
        "misses": misses,
        "n": len(y_test),
        "k": args.k,
        "seconds": time.perf_counter() - t0,
        "device": device,
        "machine": machine_info(device),
    }
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(result) + "\n")
    print(json.dumps(result) if args.json else f"{args.k}-NN: test error {result['error_rate']:.2f}% ({misses} misses)")
    return 0


def cmd_robustness(args) -> int:
    from .checkpoint import PRETRAINED, load_model
    from .data import load_mnist
    from .fileio import atomic_write_text
    from .robustness import markdown, robustness
    from .train import resolve_device

    device = resolve_device(args.device)
    models = {}
    for spec in args.models:
        name, _, path = spec.partition("=")
        if not path:
            if spec not in PRETRAINED:
                raise Lenet5Error(f"{spec!r}: expected NAME=path/to/weights.pt or one of {', '.join(PRETRAINED)}")
            path = spec
        models[name] = load_model(path, device=device)
    x, y = load_mnist("test", args.data_dir, args.dataset, args.test_subset)
    result = robustness(models, x, y, args.study, device, progress=lambda line: print(line, flush=True))
    atomic_write_text(Path(args.out), json.dumps(result) + "\n")
    if args.plot:
        from .plots import robustness_figure

        robustness_figure(result, args.plot)
    print(markdown(result))
    return 0


def cmd_compare(args) -> int:
    from .compare import ROW_KEYS, SIZE_ROWS, compare, run_rows, size_row

    keys = list(args.run)
    if keys == ["all"]:
        keys = list(ROW_KEYS) + [size_row(s).key for s in SIZE_ROWS]
    if keys:
        run_rows(keys, Path(args.results), args.seeds, args.device, main)
    rows = compare(args.results, args.out, args.paper_runs, speed=not args.no_speed, data_dir=args.data_dir)
    for r in rows:
        ours = f"{r['mean']:.2f}%" if r["status"] == "ok" else "not run yet"
        paper = f"{r['paper']}%" if r.get("paper") is not None else "-"
        print(f"{r['label']:<60} ours {ours:<12} paper {paper}")
    print(f"wrote {args.out}")
    return 0


def cmd_bench(args) -> int:
    from .bench import markdown, run_bench

    result = run_bench(seconds=args.seconds, repeats=args.repeats, quick=args.quick, data_dir=args.data_dir)
    print(json.dumps(result) if args.json else markdown(result), end="\n" if args.json else "")
    return 0


def cmd_report(args) -> int:
    from .report import markdown

    print(markdown(args.run_dirs, args.title), end="")
    return 0


def cmd_evaluate(args) -> int:
    from .checkpoint import load_model
    from .data import load_mnist
    from .fileio import atomic_write_text
    from .model import Ensemble, TestTimeAugment
    from .train import evaluate, resolve_device

    device = resolve_device(args.device)
    sources = args.weights or [args.pretrained or "paper"]
    models = [load_model(w, device=device, engine=args.engine) for w in sources]
    model = models[0] if len(models) == 1 else Ensemble(models).eval()
    if args.tta != "none":
        model = TestTimeAugment(model, args.tta).to(device).eval()
    x, y = load_mnist(args.split, args.data_dir, args.dataset, quiet=args.json)
    result = evaluate(model, x, y, device=args.device)
    result.pop("predictions")
    result["weights"] = [str(w) for w in sources]
    result["tta"] = args.tta
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(result) + "\n")
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"{args.dataset} {args.split}: error {result['error_rate']:.2f}% ({result['misses']} misses of {result['n']})"
    )
    print("per-class error: " + "  ".join(f"{c}:{e:.2f}%" for c, e in enumerate(result["per_class_error"])))
    print("confusion (rows = true, columns = predicted):")
    for c, row in enumerate(result["confusion"]):
        print(f"  {c} " + " ".join(f"{v:5d}" for v in row))
    shown = result["misclassified"][:50]
    print(f"misclassified indices{' (first 50)' if len(result['misclassified']) > 50 else ''}: {shown}")
    return 0


def cmd_plot(args) -> int:
    from . import plots

    kind, out = args.kind, args.out or f"{args.kind}.png"
    if args.run and kind not in ("curves", "softmax-curves"):
        raise Lenet5Error(f"--run is for 'curves' and 'softmax-curves' only; '{kind}' takes --weights or --pretrained")
    if args.results and kind != "robustness":
        raise Lenet5Error("--results is for 'robustness' only")
    if (args.weights or args.pretrained) and kind in ("curves", "softmax-curves", "rbf", "distortions", "robustness"):
        raise Lenet5Error(f"--weights/--pretrained do not apply to '{kind}'")
    if args.image and kind != "features":
        raise Lenet5Error("--image is for 'features' only")
    if kind == "curves":
        if not args.run:
            raise Lenet5Error("'curves' needs at least one --run RUN_DIR")
        path = plots.learning_curves(args.run, out)
    elif kind == "softmax-curves":
        if not args.run:
            raise Lenet5Error("'softmax-curves' needs at least one --run RUN_DIR")
        path = plots.training_curves(args.run, out)
    elif kind == "robustness":
        source = Path(args.results or "results/robustness.json")
        try:
            result = json.loads(source.read_text())
            result["studies"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise Lenet5Error(
                f"{source}: not a robustness result from `lenet5 robustness` ({type(e).__name__})"
            ) from None
        path = plots.robustness_figure(result, out)
    elif kind == "rbf":
        path = plots.rbf_bitmaps(out)
    elif kind == "distortions":
        from .data import load_mnist

        x, y = load_mnist("train", args.data_dir, args.dataset)
        path = plots.distortions(x, y, out, digits=args.digits, seed=args.seed)
    elif kind == "features" and args.image:
        from .checkpoint import load_model
        from .data import to_field

        try:
            from .imageprep import prepare_image
        except ImportError:
            raise Lenet5Error("--image needs lenet5.imageprep, which this installation lacks") from None
        model = load_model(args.weights or args.pretrained or "paper")
        path = plots.feature_maps(model, to_field(prepare_image(args.image)), out, label=Path(args.image).name)
    else:
        from .checkpoint import load_model
        from .data import load_mnist

        model = load_model(args.weights or args.pretrained or "paper")
        x, y = load_mnist("test", args.data_dir, args.dataset)
        label = f"{args.dataset} test set"
        if kind == "misclassified":
            path = plots.misclassified(model, x, y, out, limit=args.limit, label=label)
        elif kind == "confusion":
            path = plots.confusion(model, x, y, out, label=label)
        else:
            if args.index >= len(x):
                raise Lenet5Error(f"--index {args.index} is outside the test set (0-{len(x) - 1})")
            name = f"{args.dataset} test #{args.index}"
            path = plots.feature_maps(model, x[args.index], out, label=name, true=int(y[args.index]))
    print(f"wrote {path}")
    return 0


def cmd_export(args) -> int:
    from .checkpoint import load_model
    from .export import export_model

    model = load_model(args.weights or args.pretrained or "paper")
    path = export_model(model, args.out, args.format)
    print(f"wrote {path} ({args.format}): input (N,1,32,32) -> penalties (N,10); the prediction is the argmin")
    return 0


def cmd_predict(args) -> int:
    from .checkpoint import load_model
    from .imageprep import IMAGE_SUFFIXES
    from .predict import predict_images
    from .train import resolve_device

    model = load_model(args.weights or args.pretrained or "paper", resolve_device(args.device), args.engine)
    results = predict_images(model, args.images, reject=args.reject, polarity=args.ink)
    if not results:
        raise Lenet5Error(f"no image files ({' '.join(IMAGE_SUFFIXES)}) in {', '.join(args.images)}")
    for r in results:
        if args.json:
            print(json.dumps(r))
        elif "error" in r:
            print(f"lenet5 predict: error: {r['file']}: {r['error']}", file=sys.stderr)
        elif r["digit"] is None:
            print(f"{r['file']}: not a digit (smallest penalty {min(r['penalties']):.1f} > {args.reject:g})")
        else:
            print(f"{r['file']}: {r['digit']} (confidence {r['confidence']:.2f})")
    return 1 if any("error" in r for r in results) else 0


def cmd_read(args) -> int:
    from .checkpoint import load_model
    from .predict import read_string
    from .train import resolve_device

    model = load_model(args.weights or args.pretrained or "paper", resolve_device(args.device), args.engine)
    result = read_string(model, args.image, polarity=args.ink)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['file']}: {result['string']} (confidence {result['confidence']:.2f})")
    for d in result["digits"]:
        x0, y0, x1, y1 = d["box"]
        print(f"  {d['digit']}  confidence {d['confidence']:.2f}  box x {x0}-{x1}, y {y0}-{y1}")
    return 0


def cmd_serve(args) -> int:
    from .checkpoint import load_model
    from .serve import serve
    from .train import resolve_device

    name = args.weights or args.pretrained or "paper"
    serve(load_model(name, resolve_device(args.device), args.engine), host=args.host, port=args.port, name=name)
    return 0


def _add_training_args(p: argparse.ArgumentParser, D) -> None:  # noqa: N803 - D holds TrainConfig's defaults
    """The flags of a training recipe, shared by train and boost."""
    from .config import ARCHS, OPTIMIZERS, SUBSAMPLE_INITS

    _add_data_args(p)
    p.add_argument("--epochs", type=_positive_int, default=D.epochs, help="passes through the training set")
    p.add_argument(
        "--batch-size", type=_positive_int, default=1, help="patterns per update; 1 = the paper's per-pattern SDLM"
    )
    p.add_argument(
        "--loss",
        choices=["mse", "map", "ce"],
        default="map",
        help="mse = Eq. 8, map = Eq. 9 (deviation D4), ce = cross-entropy (softmax networks)",
    )
    p.add_argument(
        "--j", type=_positive_float, default=D.map_j, help="the constant j of Eq. 9 (our choice; the paper gives none)"
    )
    p.add_argument(
        "--mu",
        type=_positive_float,
        default=D.mu,
        help="SDLM damping mu (the paper's 0.02 diverges here: deviation D3)",
    )
    p.add_argument(
        "--eta",
        type=_positive_float,
        nargs="+",
        default=None,
        help="global learning rate per pass (last value repeats); default: the paper's schedule",
    )
    p.add_argument(
        "--eta-scale", type=_positive_float, default=1.0, help="multiply every eta of the schedule (deviation D3)"
    )
    p.add_argument(
        "--hessian-samples",
        type=_positive_int,
        default=D.hessian_samples,
        help="patterns for the h_kk estimate before each pass",
    )
    p.add_argument(
        "--batch-lr-scale",
        choices=["sqrt", "sum", "mean"],
        default="sqrt",
        help="a mini-batch step is eps_k x (sum of its per-pattern gradients) / sqrt(B), / 1 or / B (deviation D7)",
    )
    p.add_argument("--distort", action="store_true", help="train on the 600,000-pattern distorted set (Sec. III-C)")
    p.add_argument(
        "--init",
        choices=["fan-in", "sqrt-fan-in"],
        default="fan-in",
        help="initial weights +-2.4/F_i (Appendix A as printed) or +-2.4/sqrt(F_i) (an option, D1)",
    )
    p.add_argument(
        "--subsample-init",
        choices=SUBSAMPLE_INITS,
        default="uniform",
        help="initial subsampling coefficients: uniform like every weight (Appendix A) or folded away from 0 "
        "into +-[b/2, b] so that no map starts switched off (an option, D15)",
    )
    p.add_argument("--c3-table", choices=["paper", "full"], default="paper", help="C3 connections: Table I or all")
    p.add_argument(
        "--train-subset", type=_nonneg_int, default=0, help="use only the first N training patterns (0 = all)"
    )
    p.add_argument("--test-subset", type=_nonneg_int, default=0, help="evaluate on the first N test patterns (0 = all)")
    p.add_argument("--no-train-eval", action="store_true", help="skip the training-set error after each pass")
    p.add_argument(
        "--engine",
        choices=["auto", "torch", "numba"],
        default="auto",
        help="auto = the compiled numba engine for per-pattern CPU training, else torch",
    )
    p.add_argument("--seed", type=_nonneg_int, default=D.seed, help="random seed (weights, order, distortions)")
    p.add_argument("--device", default=D.device, help="cpu, cuda or cuda:N")
    p.add_argument("--threads", type=_nonneg_int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--out-dir", default="runs", help="parent folder of run directories")
    p.add_argument("--run-name", help="run directory name (default: timestamp + recipe)")
    p.add_argument(
        "--arch",
        choices=ARCHS,
        default="lenet5",
        help="the network: the paper's lenet5, lenet4, lenet1, linear, mlp300; the slides' Keras LeNet-5 "
        "(slides); a modernised LeNet-5 (modern) and a second design of it for ensembles (modern2)",
    )
    p.add_argument(
        "--optimizer", choices=OPTIMIZERS, default=D.optimizer, help="sdlm = the paper's; the others for modern nets"
    )
    p.add_argument("--lr", type=_positive_float, default=D.lr, help="peak learning rate of adamw/adam/sgd")
    p.add_argument(
        "--schedule", choices=["onecycle", "constant"], default=D.schedule, help="learning rate of adamw/adam/sgd"
    )
    p.add_argument("--weight-decay", type=_nonneg_float, default=0.0, help="weight decay of adamw/adam/sgd")
    p.add_argument("--label-smoothing", type=_nonneg_float, default=0.0, help="label smoothing of the ce loss")
    p.add_argument(
        "--augment", action="store_true", help="fresh random affine distortions every pass (modern training)"
    )
    p.add_argument(
        "--rotate",
        type=_nonneg_float,
        default=0.0,
        metavar="DEG",
        help="with --augment: also rotate by up to +-DEG degrees (RESULTS.md uses 10)",
    )
    p.add_argument(
        "--elastic",
        type=_nonneg_float,
        default=0.0,
        metavar="ALPHA",
        help="with --augment: also elastic distortions of strength ALPHA pixels (Simard et al. 2003, smoothing 4 px)",
    )
    p.add_argument(
        "--noise", type=_nonneg_float, default=0.0, help="salt-and-pepper flip probability while training (Fig. 13)"
    )
    p.add_argument("--dry-run", action="store_true", help="2 passes on 600 patterns: the whole pipeline in seconds")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    from .config import TTA_VIEWS, TrainConfig

    D = TrainConfig()  # noqa: N806 - the defaults of `train` are the config's (the paper's recipe)
    parser = argparse.ArgumentParser(
        prog="lenet5",
        description="LeNet-5 exactly as LeCun, Bottou, Bengio and Haffner (1998) describe it.",
        epilog=EPILOG,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    fmt = argparse.ArgumentDefaultsHelpFormatter

    p = sub.add_parser("data", help="obtain and verify a dataset, and say where it is", formatter_class=fmt)
    _add_data_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser(
        "summary", help="per-layer table: maps, parameters, connections, multiply-accumulates", formatter_class=fmt
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser(
        "train", help="train LeNet-5 (the paper's recipe by default) into a run directory", formatter_class=fmt
    )
    _add_training_args(p, D)
    p.add_argument(
        "--train-file",
        metavar="FILE.pt",
        help="train on the tensors x (N,1,32,32) and y (N,) of this torch file instead of the training set",
    )
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run from its last completed pass (with the run's own config.json; other flags "
        "except --quiet and --json are ignored)",
    )
    p.add_argument("--json", action="store_true", help="finish with one JSON line: run_dir, error_rate, misses, n")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate", help="test error, confusion matrix, per-class error, misclassified indices", formatter_class=fmt
    )
    _add_weights_args(p, several=True)
    _add_data_args(p)
    p.add_argument("--split", choices=["test", "train"], default="test", help="which split to score")
    p.add_argument(
        "--tta",
        choices=list(TTA_VIEWS),
        default="none",
        help="test-time augmentation: sum each network's penalties over views of every digit: shift = itself and "
        "its four 1-pixel shifts; shift-rotate adds +-5 degrees; shift-rotate-scale adds x0.93 and x1.07",
    )
    _add_inference_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object (error_rate in percent, misses, n, ...)")
    p.add_argument("--out", metavar="FILE.json", help="also write the JSON object to this file")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "boost", help="boosted LeNet-4: three networks, the paper's filtering, outputs added", formatter_class=fmt
    )
    _add_training_args(p, D)
    p.add_argument("--set-size", type=_positive_int, default=60_000, help="filtered patterns for nets 2 and 3")
    p.set_defaults(func=cmd_boost, arch="lenet4")

    p = sub.add_parser("knn", help="the k-nearest-neighbour baseline of Fig. 9", formatter_class=fmt)
    _add_data_args(p)
    p.add_argument("--k", type=int, choices=[1, 3], default=3, help="neighbours that vote")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--out", metavar="FILE.json", help="also write the JSON object to this file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_knn)

    p = sub.add_parser(
        "robustness",
        help="test error against scale, vertical shift, rotation and salt-and-pepper noise (Sec. III-E)",
        formatter_class=fmt,
    )
    p.add_argument(
        "models",
        nargs="+",
        metavar="NAME=WEIGHTS",
        help="models to compare: NAME=path/to/weights.pt, or a shipped name (paper, paper-distort)",
    )
    _add_data_args(p)
    p.add_argument("--study", action="append", choices=["scale", "shift", "rotate", "noise"], help="(default: all)")
    p.add_argument("--test-subset", type=_nonneg_int, default=0, help="the first N test digits (0 = all)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--out", metavar="FILE.json", default="robustness.json", help="where the curves go")
    p.add_argument("--plot", metavar="FILE.png", help="also draw the curves (needs the plot extra)")
    p.set_defaults(func=cmd_robustness)

    p = sub.add_parser(
        "compare",
        help="run rows of the Fig. 9 comparison and write RESULTS.md from every result on disk",
        formatter_class=fmt,
    )
    p.add_argument(
        "--run", nargs="+", metavar="ROW", default=[], help="rows to run first (see RESULTS.md); 'all' = every row"
    )
    p.add_argument("--seeds", type=_nonneg_int, nargs="+", help="seeds to run (default: each row's own)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N for the runs")
    p.add_argument("--results", default="results/variants", help="folder of the rows' results")
    p.add_argument("--paper-runs", default="results/runs", help="folder of LeNet-5's own runs (paper-sN, distort-sN)")
    p.add_argument("--out", default="RESULTS.md", help="the table to write")
    p.add_argument("--no-speed", action="store_true", help="skip the inference-speed column")
    p.add_argument("--data-dir", help="dataset cache folder")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "bench",
        help="speed and memory of our engines vs eager PyTorch and ONNX Runtime, as ratios",
        formatter_class=fmt,
    )
    p.add_argument("--seconds", type=_positive_float, default=2.0, help="minimum timed seconds per measurement")
    p.add_argument("--repeats", type=_positive_int, default=3, help="repeats per measurement (the best is kept)")
    p.add_argument("--quick", action="store_true", help="short timings and a 5,000-pattern memory run")
    p.add_argument("--data-dir", help="dataset cache folder")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the markdown table")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "report",
        help="markdown tables (per pass, mean over runs) from run directories vs the paper",
        formatter_class=fmt,
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories of the same recipe (e.g. seeds)")
    p.add_argument("--title", help="a heading for the table")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "plot",
        help="draw a figure of the paper as a PNG (learning curves, misclassified digits, ...)",
    )
    p.add_argument(
        "kind",
        metavar="KIND",
        choices=[
            "curves",
            "softmax-curves",
            "misclassified",
            "confusion",
            "rbf",
            "features",
            "distortions",
            "robustness",
        ],
        help="curves (Fig. 5), softmax-curves (the slides' accuracy and loss), misclassified (Fig. 8), confusion, "
        "rbf (Fig. 3), features (every layer), distortions (Fig. 7), robustness (Sec. III-E)",
    )
    p.add_argument("--out", metavar="FILE.png", help="the PNG to write (default: KIND.png)")
    p.add_argument(
        "--results",
        metavar="FILE.json",
        help="robustness: the curves of `lenet5 robustness` (default: results/robustness.json)",
    )
    p.add_argument(
        "--run", nargs="+", action="extend", metavar="RUN_DIR", help="curves: run directories, overlaid in one plot"
    )
    _add_weights_args(p)
    _add_data_args(p)
    p.add_argument(
        "--index", type=_nonneg_int, default=0, help="features: the test image to show (default: %(default)s)"
    )
    p.add_argument("--image", metavar="FILE", help="features: show a photo or scan of one digit instead")
    p.add_argument(
        "--limit", type=_nonneg_int, default=0, help="misclassified: draw at most N digits (default: 0 = all)"
    )
    p.add_argument(
        "--digits",
        type=_positive_int,
        default=10,
        help="distortions: digits to show, one per class (default: %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=_nonneg_int,
        default=0,
        help="distortions: the training seed whose copies to show (default: %(default)s)",
    )
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser(
        "export",
        help="write the model as ONNX or TorchScript: (N,1,32,32) inputs -> (N,10) penalties",
    )
    p.add_argument("out", metavar="OUT", help="the file to write (e.g. lenet5.onnx, lenet5.ts.pt)")
    p.add_argument(
        "--format", choices=["onnx", "torchscript"], default="onnx", help="file format (default: %(default)s)"
    )
    _add_weights_args(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "predict",
        help="classify photos or scans of single handwritten digits",
        description="Classify photos or scans of single handwritten digits, each prepared as MNIST was made "
        "(grey, ink found and cropped, fit to 20x20, centred by mass in 28x28). Prints 'FILE: DIGIT (confidence C)' "
        "per image; confidence = (p2 - p1) / (p2 + p1) of the two smallest RBF penalties. A file that cannot be "
        "used gets one error line on stderr and the others are still classified; the exit status is 1 if any "
        "file failed, else 0.",
        formatter_class=fmt,
    )
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR", help="image files, or folders of them (sorted)")
    _add_weights_args(p)
    p.add_argument(
        "--reject",
        type=_positive_float,
        metavar="THRESHOLD",
        help="answer 'not a digit' when the smallest penalty exceeds this, e.g. 20 (None: never)",
    )
    p.add_argument(
        "--ink", choices=["auto", "dark", "light"], default="auto", help="ink darker or lighter than the paper"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per image: file, digit, confidence, penalties")
    _add_inference_args(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "read",
        help="read a handwritten number (zip code, amount) written on one line",
        description="Read a handwritten number written on one line: the ink is split into characters, touching "
        "digits are cut where the network recognises the pieces best, and each digit is classified as in "
        "'predict'. Prints the string, then each digit with its confidence and box (image pixels).",
        formatter_class=fmt,
    )
    p.add_argument("image", metavar="IMAGE", help="an image file")
    _add_weights_args(p)
    p.add_argument(
        "--ink", choices=["auto", "dark", "light"], default="auto", help="ink darker or lighter than the paper"
    )
    p.add_argument("--json", action="store_true", help="one JSON object: file, string, confidence, digits")
    _add_inference_args(p)
    p.set_defaults(func=cmd_read)

    p = sub.add_parser(
        "serve",
        help="a web page to draw a digit and see every layer respond, and a JSON API (needs lenet5[serve])",
        description="Serve the web demo on http://HOST:PORT/ and the JSON API under /api (GET /api/health, "
        "POST /api/predict). Loopback only by default; --host 0.0.0.0 exposes it to the network.",
        formatter_class=fmt,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=_nonneg_int, default=8000, help="port to listen on (0 = any free port)")
    _add_weights_args(p)
    _add_inference_args(p)
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        status = args.func(args)
        sys.stdout.flush()  # inside the try: a closed pipe shows up here at the latest
        return status
    except Lenet5Error as e:
        print(f"lenet5 {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"lenet5 {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`lenet5 evaluate --json | head`): stop quietly, like cat
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 141


if __name__ == "__main__":
    sys.exit(main())
