"""The HTTP API: what the CLI does, over HTTP, for remote agents and operators.

Every request but ``/v1/health`` carries ``Authorization: Bearer <token>``. A principal's
token acts as that principal only (a field naming another principal is refused with
``forbidden``); an admin token acts for anyone and may read everything. Requests on the
daemon's Unix socket (mode 0600 in the home: only the home's owner can reach it) act as
an operator, like the in-process CLI. Errors are JSON with a stable code (see errors.py).
"""

import contextlib
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from judiciary.court import Court
from kernel import web
from kernel.api import Kernel
from kernel.listing import MAX_LISTED
from kernel.service import telemetry, tokens
from kernel.service.errors import ApiError, install
from kernel.service.limits import BodyLimit, Concurrency, RateLimiter, TokenGate
from kernel.service.tokens import Identity

NAME = Annotated[str, Field(min_length=1, max_length=40)]
REF = Annotated[str, Field(min_length=1, max_length=80)]
AMOUNT = Annotated[int, Field(ge=0, le=2**62)]
LOCAL = Identity("local", None, admin=True)
HANDLER_THREADS = 256


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewPrincipal(Body):
    name: NAME
    grant: AMOUNT = 0


class NewTransfer(Body):
    to: NAME
    amount: Annotated[int, Field(ge=1, le=2**62)]
    memo: Annotated[str, Field(max_length=500)] = ""
    principal: NAME | None = Field(default=None, description="the payer (admin tokens only; default: the token's)")


class NewInvocation(Body):
    artifact: REF
    input: Any = None
    principal: NAME | None = Field(default=None, description="who pays (admin tokens only; default: the token's)")


class NewEscrow(Body):
    amount: Annotated[int, Field(ge=1, le=2**62)]
    tests: REF
    deadline: Annotated[str, Field(max_length=40)] | None = None
    dispute_window: Annotated[str, Field(max_length=40)] = "0s"
    principal: NAME | None = None


class Delivery(Body):
    artifact: REF
    principal: NAME | None = None


class Dispute(Body):
    reason: Annotated[str, Field(min_length=1, max_length=2000)]
    principal: NAME | None = None


class Command(Body):
    input: Any = None
    principal: NAME | None = Field(default=None, description="the config's owner (admin tokens only)")


class BuyConfig(Body):
    principal: NAME | None = Field(default=None, description="the agent itself (admin tokens only)")


class WorldRun(Body):
    ticks: Annotated[int, Field(ge=1, le=100, description="at most 100 a request: a request is not a batch job")]
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None


class NewToken(Body):
    principal: NAME | None = None
    admin: bool = False
    label: Annotated[str, Field(max_length=200)] = ""


def create_app(kernel: Kernel) -> FastAPI:
    """The API over one kernel (the daemon's); its handlers run on the server's thread pool."""
    s = kernel.settings

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Handlers run on threads; a run can hold one for its wall limit: room for many at once.
        anyio.to_thread.current_default_thread_limiter().total_tokens = HANDLER_THREADS
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="artifact kernel",
        version="1",
        description="Sandboxed artifact execution, metered and paid for in scrip; escrows settled by test suites.",
    )
    install(app)
    json_bytes = max(64 * 1024, 2 * s.max_input_bytes + 64 * 1024)  # an input, escaped, and the rest
    app.add_middleware(BodyLimit, json_bytes=json_bytes, upload_bytes=s.api_max_body_bytes,
                       upload_paths=frozenset({"/v1/artifacts"}))  # fmt: skip
    limiter = RateLimiter(s.api_rate_per_minute, s.api_burst)
    failures = RateLimiter(s.api_rate_per_minute, s.api_burst, who="this address")  # refused tokens, per address
    app.add_middleware(TokenGate, verify=lambda t: tokens.verify(kernel.db, t), failures=failures)
    in_flight = Concurrency(s.api_concurrent_per_token)

    def identity(request: Request) -> Iterator[Identity]:
        who = request.scope.get("state", {}).get("identity", LOCAL)  # the gate let it in: a token, or the socket
        if who is LOCAL:
            server = request.scope.get("server")
            if not (server and server[1] is None):  # never: the gate stops a TCP request with no identity
                raise ApiError(401, "unauthorized", "send `Authorization: Bearer <token>`.")
            yield who
            return
        limiter.take(who.token_id)
        in_flight.enter(who.token_id)
        try:
            yield who
        finally:
            in_flight.leave(who.token_id)

    Who = Annotated[Identity, Depends(identity)]

    def streaming(request: Request) -> Identity:
        """The identity of a long-lived stream: rate limited, but held apart from the requests in
        flight (the stream endpoint caps its own streams per token)."""
        who: Identity = request.scope.get("state", {}).get("identity", LOCAL)
        if who is LOCAL:
            server = request.scope.get("server")
            if not (server and server[1] is None):
                raise ApiError(401, "unauthorized", "send `Authorization: Bearer <token>`.")
        else:
            limiter.take(who.token_id)
        return who

    Streamer = Annotated[Identity, Depends(streaming)]

    def acting(who: Identity, named: str | None) -> str:
        """The principal a request acts for: the token's own, or (admin) the one it names."""
        if who.admin:
            if named is None:
                raise ApiError(400, "invalid_input", "an admin token must name the principal it acts for.")
            return named
        assert who.principal is not None
        if named is not None and named != who.principal:
            raise ApiError(403, "forbidden", f"this token acts for {who.principal} only, not for {named}.")
        return who.principal

    def admin(who: Identity) -> None:
        if not who.admin:
            raise ApiError(403, "forbidden", "only an operator's (admin) token may do this.")

    def own(who: Identity, principal: str) -> None:
        if not who.admin and who.principal != principal:
            raise ApiError(403, "forbidden", f"this token may read {who.principal}'s records only.")

    # -- the daemon ---------------------------------------------------------------------
    @app.get("/v1/health", tags=["daemon"])
    async def health() -> dict[str, Any]:
        return {"ok": True, "home": str(s.home)}

    @app.get("/v1/whoami", tags=["daemon"])
    def whoami(who: Who) -> dict[str, Any]:
        return {"token": who.token_id, "principal": who.principal, "admin": who.admin}

    @app.get("/v1/pool", tags=["daemon"])
    def pool(who: Who) -> dict[str, Any]:
        admin(who)
        return kernel.pool_status()

    # -- principals and scrip -------------------------------------------------------------
    @app.get("/v1/principals", tags=["scrip"])
    def principals(who: Who) -> list[dict[str, Any]]:
        rows = kernel.principals()
        return rows if who.admin else [r for r in rows if r["name"] == who.principal]

    @app.post("/v1/principals", tags=["scrip"], status_code=201)
    def create_principal(new: NewPrincipal, who: Who) -> dict[str, Any]:
        admin(who)
        return {"name": new.name, "balance": kernel.create_principal(new.name, new.grant)}

    @app.get("/v1/principals/{name}/balance", tags=["scrip"])
    def balance(name: str, who: Who) -> dict[str, Any]:
        own(who, name)
        return {"name": name, "balance": kernel.balance(name)}

    @app.post("/v1/transfers", tags=["scrip"])
    def transfer(new: NewTransfer, who: Who) -> dict[str, Any]:
        payer = acting(who, new.principal)
        return {"payer": payer, "to": new.to, "amount": new.amount,
                "balance": kernel.transfer(payer, new.to, new.amount, new.memo)}  # fmt: skip

    @app.get("/v1/ledger/check", tags=["scrip"])
    def ledger_check(who: Who) -> dict[str, Any]:
        return kernel.ledger_check().model_dump(mode="json")

    # -- artifacts ----------------------------------------------------------------------------
    @app.post(
        "/v1/artifacts",
        tags=["artifacts"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "the package folder as a tar archive (gzip allowed): `tar -cz -C DIR .`",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    )
    async def submit(
        request: Request, who: Who, principal: Annotated[str | None, Query(max_length=40)] = None, public: bool = False
    ) -> JSONResponse:
        """Store a package: the body is a tar archive (gzip allowed) of the package folder."""
        owner = acting(who, principal)
        data = await request.body()
        from starlette.concurrency import run_in_threadpool

        result = await run_in_threadpool(_submit, kernel, data, owner, public)
        return JSONResponse(result, status_code=201 if result["created"] else 200)

    @app.get("/v1/artifacts", tags=["artifacts"])
    def artifacts(who: Who, owner: Annotated[str | None, Query(max_length=40)] = None) -> list[dict[str, Any]]:
        return [a.model_dump(mode="json") for a in kernel.artifacts(owner)]

    @app.get("/v1/artifacts/{ref}", tags=["artifacts"])
    def artifact(ref: str, who: Who) -> dict[str, Any]:
        return kernel.artifact(ref).model_dump(mode="json")

    @app.get("/v1/graph", tags=["artifacts"])
    def graph(who: Who) -> dict[str, Any]:
        return kernel.graph().model_dump(mode="json")

    # -- runs ------------------------------------------------------------------------------------
    @app.post("/v1/invoke", tags=["runs"])
    def invoke(new: NewInvocation, who: Who) -> dict[str, Any]:
        """Run an artifact in a fresh sandbox, paid by the token's principal. A failed run is a
        result (its ``status`` says why), not an error."""
        return kernel.invoke(new.artifact, acting(who, new.principal), new.input).model_dump(mode="json")

    @app.get("/v1/runs", tags=["runs"])
    def runs(
        who: Who,
        limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 50,
        principal: Annotated[str | None, Query(max_length=40)] = None,
    ) -> list[dict[str, Any]]:
        if not who.admin:
            principal = acting(who, principal)
        return [r.model_dump(mode="json") for r in kernel.runs(limit, principal)]

    @app.get("/v1/runs/{ref}", tags=["runs"])
    def run(ref: str, who: Who) -> dict[str, Any]:
        found = kernel.run(ref)
        own(who, found.principal)
        return found.model_dump(mode="json")

    # -- audit -------------------------------------------------------------------------------------
    @app.get("/v1/audit/events", tags=["audit"])
    def events(
        who: Who,
        run: Annotated[str | None, Query(max_length=80)] = None,
        principal: Annotated[str | None, Query(max_length=40)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 1000,
    ) -> list[dict[str, Any]]:
        if not who.admin:
            principal = acting(who, principal)
        return [e.model_dump(mode="json") for e in kernel.events(run, principal, limit)]

    @app.post("/v1/audit/scan", tags=["audit"])
    def audit_scan(who: Who, rescore: bool = False) -> dict[str, Any]:
        admin(who)
        return kernel.audit_scan(rescore).model_dump(mode="json")

    @app.get("/v1/audit/flows", tags=["audit"])
    def audit_flows(who: Who) -> list[dict[str, Any]]:
        admin(who)
        return [f.model_dump(mode="json") for f in kernel.audit_flows()]

    @app.get("/v1/audit/alerts", tags=["audit"])
    def audit_alerts(
        who: Who,
        kind: Annotated[str | None, Query(max_length=40)] = None,
        principal: Annotated[str | None, Query(max_length=40)] = None,
        everything: bool = False,
    ) -> list[dict[str, Any]]:
        admin(who)
        return [a.model_dump(mode="json") for a in kernel.audit_alerts(kind, principal, everything)]

    # -- escrows -------------------------------------------------------------------------------------
    @app.get("/v1/escrows", tags=["escrows"])
    def escrows(
        who: Who, state: Literal["open", "delivered", "judged", "disputed", "released", "refunded"] | None = None
    ) -> list[dict[str, Any]]:
        return [e.model_dump(mode="json") for e in Court(kernel).escrows(state)]

    @app.get("/v1/escrows/{ref}", tags=["escrows"])
    def escrow(ref: str, who: Who) -> dict[str, Any]:
        return Court(kernel).show(ref).model_dump(mode="json")

    @app.post("/v1/escrows", tags=["escrows"], status_code=201)
    def open_escrow(new: NewEscrow, who: Who) -> dict[str, Any]:
        buyer = acting(who, new.principal)
        court = Court(kernel, s.appeal_runs)
        return court.open(buyer, new.amount, new.tests, new.deadline, new.dispute_window).model_dump(mode="json")

    @app.post("/v1/escrows/{ref}/deliver", tags=["escrows"])
    def deliver(ref: str, delivery: Delivery, who: Who) -> dict[str, Any]:
        court = Court(kernel, s.appeal_runs)
        return court.deliver(ref, acting(who, delivery.principal), delivery.artifact).model_dump(mode="json")

    @app.post("/v1/escrows/{ref}/judge", tags=["escrows"])
    def judge(ref: str, who: Who) -> dict[str, Any]:
        court = Court(kernel, s.appeal_runs)
        found = court.show(ref)
        if not who.admin and who.principal not in (found.buyer, found.worker):
            raise ApiError(
                403, "forbidden", "only the escrow's buyer, its worker or an operator may ask for a verdict."
            )
        return court.judge(ref).model_dump(mode="json")

    @app.post("/v1/escrows/{ref}/dispute", tags=["escrows"])
    def dispute(ref: str, new: Dispute, who: Who) -> dict[str, Any]:
        court = Court(kernel, s.appeal_runs)
        return court.dispute(ref, acting(who, new.principal), new.reason).model_dump(mode="json")

    # -- the economy -------------------------------------------------------------------------------------
    def world() -> Any:
        from kernel.world.clock import World

        return World(kernel, Court(kernel, s.appeal_runs))

    @app.get("/v1/world", tags=["world"])
    def world_status(who: Who) -> dict[str, Any]:
        return world().status()  # type: ignore[no-any-return]

    @app.post("/v1/world/run", tags=["world"])
    def world_run(new: WorldRun, who: Who) -> dict[str, Any]:
        """Advance the world (an operator's token): every active agent steps once a tick."""
        admin(who)
        return world().run(new.ticks, new.seed)  # type: ignore[no-any-return]

    def sees(who: Identity, agent: Any) -> bool:
        """An agent's memory, parameters and reasoning are its own and its config owner's."""
        return who.admin or who.principal in (agent.name, agent.config_owner)

    @app.get("/v1/world/steps", tags=["world"])
    def world_steps(
        who: Who,
        agent: Annotated[str | None, Query(max_length=40)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 50,
    ) -> list[dict[str, Any]]:
        """Recent steps with their decisions: an agent's own and its config owner's to read."""
        from kernel.world import agents

        if agent is None and not who.admin:
            raise ApiError(400, "invalid_input", "name the ?agent= whose steps to read (yours, or one you own).")
        if agent is not None and not sees(who, agents.get(kernel.db, agent)):
            raise ApiError(403, "forbidden", f"{agent}'s steps are its own and its config owner's to read.")
        return world().steps(agent, limit)  # type: ignore[no-any-return]

    @app.get("/v1/agents", tags=["world"])
    def agents_list(who: Who, owner: Annotated[str | None, Query(max_length=40)] = None) -> list[dict[str, Any]]:
        """Agents this token may see: itself and the agents whose config it owns (every one, for an admin)."""
        from kernel.world import agents

        return [a.model_dump(mode="json") for a in agents.list_agents(kernel.db, owner) if sees(who, a)]

    @app.get("/v1/agents/{name}", tags=["world"])
    def agent_show(name: str, who: Who) -> dict[str, Any]:
        from kernel.world import agents

        found = agents.get(kernel.db, name)
        if not sees(who, found):
            raise ApiError(403, "forbidden", f"agent {name} is its own and its config owner's to read.")
        return found.model_dump(mode="json")

    @app.post("/v1/agents/{name}/command", tags=["world"])
    def agent_command(name: str, order: Command, who: Who) -> dict[str, Any]:
        """The owner of an agent's config orders one step now (trigger ``command``)."""
        return world().command(name, acting(who, order.principal), order.input)  # type: ignore[no-any-return]

    @app.post("/v1/agents/{name}/buy-config", tags=["world"])
    def agent_buy_config(name: str, order: BuyConfig, who: Who) -> dict[str, Any]:
        """The agent (the token's principal) buys its own config at its owner's price."""
        from kernel.world import agents

        if acting(who, order.principal) != name:
            raise ApiError(403, "forbidden", f"only {name} itself can buy its config.")
        return agents.buy_config(kernel.db, name).model_dump(mode="json")

    # -- telemetry (kernel/service/telemetry.py) ------------------------------------------------
    telemetry.install(app, kernel, Who, Streamer, admin)
    web.install(app)  # the dashboard's page and scripts at / and /static/ (public: no data in them)

    # -- tokens --------------------------------------------------------------------------------------
    @app.get("/v1/tokens", tags=["tokens"])
    def token_list(who: Who) -> list[dict[str, Any]]:
        admin(who)
        return tokens.listing(kernel.db)

    @app.post("/v1/tokens", tags=["tokens"], status_code=201)
    def token_create(new: NewToken, who: Who) -> dict[str, Any]:
        admin(who)
        return tokens.create(kernel.db, new.principal, new.admin, new.label)

    @app.delete("/v1/tokens/{token_id}", tags=["tokens"])
    def token_revoke(token_id: str, who: Who) -> dict[str, Any]:
        admin(who)
        return tokens.revoke(kernel.db, token_id)

    return app


def _submit(kernel: Kernel, data: bytes, owner: str, public: bool) -> dict[str, Any]:
    """The upload is read like a `kernel submit` of an archive: every package rule and limit applies."""
    if not data:
        raise ApiError(400, "invalid_package", "the body is empty; send the package folder as a tar archive.")
    kernel.settings.cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=kernel.settings.cache_dir, prefix="upload-", suffix=".tar") as tmp:
        tmp.write(data)
        tmp.flush()
        return kernel.submit(Path(tmp.name), owner, public).model_dump(mode="json")
