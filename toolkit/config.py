"""Configuration dataclasses: model shapes and training recipes, each training field with its
`spamkit train` help. Torch-free, so the CLI can show defaults without importing torch."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from spamkit.errors import SpamkitError
from spamkit.jsonfile import peek_format_json
from spamkit.outputs import CHECKPOINT_FILES, PRETRAINED_FORMAT
from spamkit.runtime.bundle import TOKENS  # which token the head reads: "last" or "first"
from spamkit.runtime.hub import is_hub_reference

TRAINABLE = ("head", "last-block", "all", "lora")
INITS = ("random", "gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")
LR_SCHEDULES = ("constant", "cosine")
KEEPS = ("best", "last")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # auto: bf16 on a GPU, fp32 on a CPU
TRAIN_DEVICES = ("auto", "cuda", "cpu")  # auto: CUDA when PyTorch sees a GPU, else the CPU
SPLITS = ("balanced", "full")  # how the data is split into train/val/test
SPLIT_NAMES = ("train", "val", "test", "all")  # what `spamkit eval` scores
ENGINES = ("local", "ray")  # where `spamkit score` runs


# The largest model a config (from a file: a checkpoint, pretrained weights, a training state)
# may describe, refused before anything is allocated: GPT-2 XL has 48 layers and 1.6e9
# parameters, and these caps leave room above it.
MAX_LAYERS = 256
MAX_PARAMETERS = 4 * 10**9
SIZES = ("vocab_size", "context_length", "n_layer", "n_head", "n_embd", "num_classes")


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 50257
    context_length: int = 1024
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    num_classes: int = 2
    # Which token the head reads: "last" (the last real token, the default) or "first" (the
    # book's exercise 6.3, which shows why "last" is the right choice).
    token: str = "last"

    def __post_init__(self) -> None:
        # Checked here, not by asserts deep in the model, because configs arrive from files.
        for name in SIZES:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise SpamkitError(f"model size {name} must be a whole number, not {value!r}")
        if min(self.vocab_size, self.context_length, self.n_layer, self.n_head, self.n_embd) < 1:
            raise SpamkitError(f"model sizes must be positive: {self}")
        if self.n_layer > MAX_LAYERS or self.parameters > MAX_PARAMETERS:
            raise SpamkitError(
                f"a model of {self.n_layer} layers and {self.parameters:.2g} parameters is "
                f"beyond what spamkit builds (at most {MAX_LAYERS} layers and "
                f"{MAX_PARAMETERS:.0g} parameters)")
        if self.n_embd % self.n_head:
            raise SpamkitError(f"n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        if self.num_classes < 2:
            raise SpamkitError(f"a classifier needs at least 2 classes, not {self.num_classes}")
        if self.token not in TOKENS:
            raise SpamkitError(f"token must be 'last' or 'first', not {self.token!r}")
        # Written so that NaN fails too: torch's dropout refuses it only deep inside a forward.
        if (not isinstance(self.dropout, (int, float)) or isinstance(self.dropout, bool)
                or not 0 <= self.dropout < 1):
            raise SpamkitError(f"dropout must be a rate from 0 to below 1, not {self.dropout!r}")

    @property
    def parameters(self) -> int:
        """How many weights the model has, counted from its sizes (nothing is built)."""
        e = self.n_embd
        block = 12 * e * e + 13 * e  # two LayerNorms, attention (qkv, proj), the MLP (4 * e wide)
        return ((self.vocab_size + self.context_length) * e + self.n_layer * block + 2 * e
                + (e + 1) * self.num_classes)


PRESETS: dict[str, GPTConfig] = {
    "tiny": GPTConfig(context_length=256, n_layer=2, n_head=2, n_embd=64),
    "mini": GPTConfig(context_length=512, n_layer=4, n_head=4, n_embd=256),
    "gpt2": GPTConfig(),
    "gpt2-medium": GPTConfig(n_layer=24, n_head=16, n_embd=1024),
    "gpt2-large": GPTConfig(n_layer=36, n_head=20, n_embd=1280),
    "gpt2-xl": GPTConfig(n_layer=48, n_head=25, n_embd=1600),
}


def init_problem(init: str) -> str | None:
    """What is wrong with `spamkit train --init INIT`, or None: it takes a name of INITS, an
    hf:// reference, or a folder (what that folder holds is checked when it is read)."""
    if init in INITS or is_hub_reference(init) or Path(init).expanduser().is_dir():
        return None
    return (f"{init!r} is none of {', '.join(INITS)}, nor a `spamkit pretrain` folder, nor a "
            "folder or hf://org/name of a transformers GPT2ForSequenceClassification")


def pretrain_init_problem(init: str) -> str | None:
    """What is wrong with `spamkit pretrain --init INIT`, or None: a name of INITS, or a
    `spamkit pretrain` folder to pretrain further."""
    if init in INITS or is_pretrained_lm(init):
        return None
    return f"{init!r} is none of {', '.join(INITS)}, nor a `spamkit pretrain` folder"


def is_pretrained_lm(init: str | None) -> bool:
    """Whether `init` names a folder `spamkit pretrain` wrote (its config declares the format)."""
    if not init or init in INITS or is_hub_reference(init):
        return False
    config = Path(init).expanduser() / CHECKPOINT_FILES[0]
    return peek_format_json(config, PRETRAINED_FORMAT) is not None


def preset_config(name: str, **overrides) -> GPTConfig:
    return replace(PRESETS[name], **overrides)


def option(default, help: str, **typer_args) -> Any:
    """A TrainConfig field with its `spamkit train` option: the help, and `choices`, `check` (a
    function saying what is wrong with a value, or None), `flag` (e.g. "--compile/--no-compile")
    or bounds (`min`) when it has them (cli_options.config_options)."""
    return field(default=default, metadata={"help": help, **typer_args})


@dataclass(frozen=True)
class TrainConfig:
    preset: str | None = option(
        None, "Model shape: " + ", ".join(PRESETS) + ". Default: mini, or the shape of the "
        "pretrained weights.", choices=tuple(PRESETS))
    init: str = option(
        "random", "Initial weights: " + ", ".join(INITS) + " (GPT-2 from the Hugging Face cache "
        "or hub, or from --weights), a `spamkit pretrain` folder (its trunk, a new head), or a "
        "transformers GPT2ForSequenceClassification folder or hf://org/name[@revision] of one, "
        "to continue its fine-tuning (head and labels included).", check=init_problem,
        metavar="NAME|DIR|hf://org/name")
    weights: str | None = option(
        None, "Local GPT-2 weights in the Hugging Face format (model.safetensors or "
        "pytorch_model.bin, or their directory) for --init.")
    trainable: str = option("all", "What to fine-tune: " + ", ".join(TRAINABLE) + ".",
                            choices=TRAINABLE)
    lora_rank: int = option(16, "With --trainable lora.")
    lora_alpha: float = option(8.0, "With --trainable lora.")
    token: str = option("last", "Classify from the last real token, or the first.",
                        choices=TOKENS)
    # None pads each batch to its longest message; the book's fixed padding is kept to
    # reproduce its experiments.
    pad_to: str | None = option(
        None, "Pad every message to N tokens, 'longest' or 'context' and read the last "
        "position (the book's setup, for its experiments; not exportable).")
    epochs: int = option(5, "Passes over the training split.")
    batch_size: int = option(8, "Messages per optimizer step (over all processes).", min=1)
    lr: float = option(5e-4, "AdamW learning rate.")
    weight_decay: float = option(0.1, "AdamW weight decay (matrices and embeddings only).")
    lr_schedule: str = option("constant", "constant, or cosine: decay from --lr to 0 over the "
                              "run.", choices=LR_SCHEDULES)
    warmup_steps: int = option(0, "Raise the learning rate linearly from 0 to --lr over this "
                               "many optimizer steps first; --lr-schedule applies after them.",
                               min=0)
    # "last" is the book's; after a decaying schedule it can be the steadier choice.
    keep: str = option("best", "The epoch the checkpoint holds: best (validation accuracy, ties "
                       "by validation loss) or last.", choices=KEEPS)
    grad_accum: int = option(1, "Micro-batches per optimizer step.")
    precision: str = option(
        "auto", "Autocast: " + ", ".join(PRECISIONS) + " (auto: bf16 on a GPU, fp32 on a CPU, "
        "where bf16 is slower or trains worse; bf16 becomes fp16 with a gradient scaler on GPUs "
        "without it; see docs/training.md).", choices=PRECISIONS)
    compile: bool | None = option(
        None, "torch.compile the model (default: on a GPU only: on a CPU compiling costs time "
        "on every run and gains none; see docs/training.md).", flag="--compile/--no-compile")
    cache_frozen: bool = option(
        True, "When only the last block or the head trains (dropout 0), compute the frozen "
        "layers' outputs once and reuse them every epoch: the same training, a fraction of the "
        "compute.", flag="--cache-frozen/--no-cache-frozen")
    dropout: float = option(0.0, "Dropout rate while training.")
    char_ngrams: int = option(
        0, "Let each token embedding learn through the character 1..N-grams of its text, "
        "shared by tokens spelled alike, so tokens unseen in training are not random noise "
        "(for training from random weights, with --trainable all; folded into the embeddings "
        "in the checkpoint). 0: off.")
    seed: int = option(123, "Seed of the split, the init and the shuffling.")
    init_seed: int | None = option(
        None, "Seed of the init, dropout and the shuffling alone (default: --seed): another "
        "value trains another model on the same split.")
    max_steps: int | None = option(None, "Stop after this many optimizer steps.")
    device: str = option("auto", ", ".join(TRAIN_DEVICES) + ": auto trains on CUDA when PyTorch "
                         "sees a GPU, else on the CPU.", choices=TRAIN_DEVICES)

    @property
    def weights_seed(self) -> int:
        """What seeds the init, dropout and the shuffling."""
        return self.seed if self.init_seed is None else self.init_seed

    def check(self) -> None:
        if self.preset is not None and self.preset not in PRESETS:
            raise SpamkitError(f"unknown preset {self.preset!r}; choose from {', '.join(PRESETS)}")
        if self.weights and self.init == "random":
            raise SpamkitError("--weights loads pretrained GPT-2 weights: name their size with "
                               "--init gpt2 (or gpt2-medium, gpt2-large, gpt2-xl)")
        pretrained = is_pretrained_lm(self.init)
        if pretrained and self.weights:
            raise SpamkitError(f"--weights loads GPT-2 weights (with --init gpt2); --init "
                               f"{self.init} starts from the trunk pretrained there")
        if self.init not in INITS and not pretrained:
            self._check_classifier_init()
        if self.pad_to not in (None, "longest", "context") and not str(self.pad_to).isdigit():
            raise SpamkitError(f"--pad-to takes a length, 'longest' or 'context', "
                               f"not {self.pad_to!r}")
        if self.lora_rank < 1:
            raise SpamkitError("--lora-rank must be at least 1")
        if self.trainable not in TRAINABLE:
            raise SpamkitError(f"unknown --trainable {self.trainable!r}; choose from {TRAINABLE}")
        if self.token not in TOKENS:
            raise SpamkitError(f"unknown --token {self.token!r}; choose 'last' or 'first'")
        if self.device not in TRAIN_DEVICES:
            raise SpamkitError(f"unknown --device {self.device!r}; choose from "
                               f"{', '.join(TRAIN_DEVICES)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise SpamkitError(f"unknown --lr-schedule {self.lr_schedule!r}; choose from "
                               f"{', '.join(LR_SCHEDULES)}")
        if self.keep not in KEEPS:
            raise SpamkitError(f"unknown --keep {self.keep!r}; choose from {', '.join(KEEPS)}")
        if self.precision not in PRECISIONS:
            raise SpamkitError(f"unknown --precision {self.precision!r}; choose from {PRECISIONS}")
        if self.char_ngrams < 0:
            raise SpamkitError("--char-ngrams must be 0 (off) or a positive length")
        if self.char_ngrams and self.trainable != "all":
            raise SpamkitError("--char-ngrams trains the token embeddings: use it with "
                               "--trainable all")
        if self.epochs < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise SpamkitError("--epochs, --batch-size and --grad-accum must be at least 1")

    def _check_classifier_init(self) -> None:
        """Options that would undo what a classifier given to --init learned. (Whether it is
        there is checked when it is read: a resumed run no longer needs it.)"""
        if self.weights:
            raise SpamkitError(f"--weights starts a new classifier from GPT-2 weights (with "
                               f"--init gpt2); --init {self.init} continues one that has its own")
        if self.token != "last":
            raise SpamkitError(f"--token {self.token}: the classifier at {self.init} reads the "
                               "last token, as transformers' GPT2ForSequenceClassification does")


def train_option(name: str, default: Any = None, help: str | None = None, **typer_args) -> Any:
    """TrainConfig's field `name` as a field of another command's settings, with its option's
    help and checks, and another `default` or `help` where given."""
    f = TrainConfig.__dataclass_fields__[name]
    metadata = {**f.metadata, **({"help": help} if help else {}), **typer_args}
    return field(default=f.default if default is None else default, metadata=metadata)


@dataclass(frozen=True)
class PretrainConfig:
    """`spamkit pretrain`: next-token training of the classifier's trunk on unlabelled text."""

    preset: str | None = train_option("preset")
    init: str = train_option(
        "init", help="Initial weights: " + ", ".join(INITS) + " (GPT-2 from the Hugging Face "
        "cache or hub, or from --weights), or a `spamkit pretrain` folder to pretrain further.",
        check=pretrain_init_problem, metavar="NAME|DIR")
    weights: str | None = train_option("weights")
    seq_len: int = option(128, "Tokens per training block: messages are packed end to end, "
                          "<|endoftext|> between them, and cut into blocks this long.", min=2)
    held_out: float = option(0.05, "Share of the unlabelled messages kept out of training to "
                             "measure the language-model loss and perplexity on.")
    epochs: int = train_option("epochs", default=1, help="Passes over the unlabelled text.")
    batch_size: int = train_option("batch_size", default=16, help="Blocks per optimizer step.")
    lr: float = train_option("lr", default=1e-3)
    weight_decay: float = train_option("weight_decay")
    lr_schedule: str = train_option("lr_schedule", default="cosine")
    warmup_steps: int = train_option("warmup_steps")
    precision: str = train_option("precision")
    compile: bool | None = train_option("compile")
    dropout: float = train_option("dropout")
    char_ngrams: int = train_option(
        "char_ngrams", help="Let each token embedding learn through the character 1..N-grams of "
        "its text, so the tokens the text never uses learn too (folded into the embeddings in "
        "the folder). 0: off.")
    seed: int = train_option("seed", help="Seed of the split held out, the init and the "
                             "shuffling.")
    max_steps: int | None = train_option("max_steps")
    device: str = train_option("device")

    def check(self) -> None:
        if self.seq_len < 2:
            raise SpamkitError("--seq-len must be at least 2 tokens")
        if not 0 < self.held_out < 1:
            raise SpamkitError(f"--held-out is a share of the messages, above 0 and below 1, "
                               f"not {self.held_out}")
        problem = pretrain_init_problem(self.init)
        if problem:
            raise SpamkitError(f"--init {problem}")
        self.as_train().check()

    def as_train(self) -> TrainConfig:
        """The run as the training loop takes it: every weight trains, the last epoch is kept."""
        same = {name: getattr(self, name) for name in (
            "preset", "init", "weights", "epochs", "batch_size", "lr", "weight_decay",
            "lr_schedule", "warmup_steps", "precision", "compile", "dropout", "char_ngrams",
            "seed", "max_steps", "device")}
        return TrainConfig(**same, trainable="all", keep="last", cache_frozen=False)
