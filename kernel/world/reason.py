"""reason(prompt): a language model asked by the kernel on a run's behalf, paid in scrip per token.

Only the kernel reaches a model, through the ``llm`` library and its plugins (OpenAI,
Anthropic, Ollama, llama.cpp servers...); nothing inside a sandbox has a network. The
model is the setting ``KERNEL_REASON_MODEL`` (``echo`` from ``llm-echo`` in the tests).
A call's tokens are the model's reported usage, or, for a model that reports none, the
whitespace-separated words of the prompt and the answer. Before the model is asked the
caller pays for the prompt and ``KERNEL_REASON_MAX_TOKENS`` of answer (burned, in the
same transaction as the check, so parallel calls cannot share one balance); after, what
was not used is given back (minted, an explicit row). The model is asked for at most that
many tokens where its plugin takes ``max_tokens``, and the answer is cut to that many
words in any case: nothing is answered that was not paid for.
"""

import threading
import time
from dataclasses import dataclass
from typing import Any

from kernel import ledger
from kernel.db import Database
from kernel.errors import InsufficientFunds
from kernel.settings import Settings
from kernel.world.errors import NoModel

_import_lock = threading.Lock()


@dataclass(frozen=True)
class Answer:
    text: str
    tokens: int
    cost: int
    model: str


def _words(text: str) -> int:
    return len(text.split())


def load_llm() -> Any:
    """The ``llm`` library with its plugins. Imported once, under a lock: a first import racing
    another thread's imports can see a half-made module; the world imports it up front."""
    with _import_lock:
        try:
            import llm
        except ImportError:
            time.sleep(0.1)  # another thread was importing what it needs: once more, after it
            try:
                import llm
            except ImportError as exc:
                raise NoModel(
                    f"the `llm` library cannot be imported ({exc}); install the project's dependencies."
                ) from exc
        return llm


def model_of(model_id: str) -> Any:
    llm = load_llm()
    try:
        return llm.get_model(model_id)
    except llm.UnknownModelError as exc:
        raise NoModel(
            f"KERNEL_REASON_MODEL names '{model_id}', which no installed llm plugin provides;"
            " `llm models` lists the models."
        ) from exc


def _ask(model_id: str, prompt: str, max_tokens: int) -> tuple[str, int | None, int | None]:
    model = model_of(model_id)
    options: dict[str, Any] = {}
    if "max_tokens" in getattr(model.Options, "model_fields", {}):
        options["max_tokens"] = max_tokens
    ask: Any = model.prompt  # options are keyword arguments whose names depend on the plugin
    try:
        response = ask(prompt, **options)
        text = response.text()
        usage: Any = response.usage()
    except Exception as exc:  # noqa: BLE001 - a model's failure is the caller's refusal, in one sentence
        raise NoModel(f"the model '{model_id}' failed: {str(exc)[:300]}") from exc
    return text, getattr(usage, "input", None), getattr(usage, "output", None)


def reason(db: Database, settings: Settings, principal: str, prompt: str, run_id: str | None = None) -> Answer:
    """Ask the configured model; charge ``principal`` per token; the answer's text."""
    model_id = settings.reason_model
    if not model_id:
        raise NoModel("no language model is configured; set KERNEL_REASON_MODEL (e.g. `echo` with llm-echo).")
    price, most = settings.reason_price_per_token, settings.reason_max_tokens
    reserve = (_words(prompt) + most) * price
    with db.transaction() as conn:
        have = ledger.balance_in(conn, principal)
        if have < reserve:
            raise InsufficientFunds(f"{principal} has {have} scrip; reason() needs {reserve} up front for this prompt.")
        ledger.move(conn, ledger.principal_account(principal), ledger.MINT, reserve, kind="reason",
                    memo=f"up to {most} tokens of {model_id}", run_id=run_id)  # fmt: skip
    try:
        text, used_in, used_out = _ask(model_id, prompt, most)
    except NoModel:
        _give_back(db, settings, principal, reserve, run_id, "the model failed")
        raise
    words = text.split()
    if len(words) > most:
        text = " ".join(words[:most])  # no more answer than was paid for
    tokens_in = used_in if used_in is not None else _words(prompt)
    tokens_out = min(used_out if used_out is not None else _words(text), most)
    cost = min(reserve, (tokens_in + tokens_out) * price)
    _give_back(db, settings, principal, reserve - cost, run_id, f"{tokens_in + tokens_out} tokens used")
    return Answer(text=text, tokens=tokens_in + tokens_out, cost=cost, model=model_id)


def _give_back(db: Database, settings: Settings, principal: str, amount: int, run_id: str | None, why: str) -> None:
    if amount:
        with db.transaction() as conn:
            ledger.mint(conn, ledger.principal_account(principal), amount, settings.bounds, memo=f"reason: {why}")
