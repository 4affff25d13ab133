"""The shipped scripted policies. A config is this package plus parameters; ``params["role"]``
chooses the policy. Every policy is deterministic given its observation (``seed`` included)
and acts only through ``kernel_client``; it returns its decision with its reasoning and
the memory it keeps for its next step.

Roles: builder, tester, generalist, manager, worker, freerider, liar, thinker (uses reason()).

Parameters the roles read:
  skills   {task: {"function", "target", "source", "uses": [task...]}}: what it can write
  verify   builder/worker: pay a tester's check before delivering (default false)
  price    the price it asks for the components and checks it publishes (default 2)
  tithe    worker: the share of its earnings it pays its manager while it does not own itself
  reserve  worker: scrip it keeps after buying its config (default 10)
  pool     manager/worker: the firm's pool
  explore  generalist: the chance of trying the other kind of work (default 0.2)
"""

import itertools
import json
import random

import kernel_client as kc

COMPONENT = "component-"
CHECK = "check-"
SUITE = "suite-"
PROBES = {
    "str": ["", "a", "Hello  World", "abc cba", "A man, a plan", "Level", "aab", "x1y2"],
    "int": [0, 1, 2, 7, 12, 1900, 2000],
    "list": [[], [1], [3, 1, 2], [1, 1, 2], [5, 4, 3, 2, 1]],
    "nums": [[], [4], [6, 9, 12], [1, 2, 3, 4]],
}


# -- what the observation says ---------------------------------------------------------------
def skills(obs):
    return obs["params"].get("skills", {})


def tasks_open(obs, kind=None):
    """Open escrows the Mint posted (with their task), best paid first."""
    found = [e for e in obs["escrows"] if e.get("task") and e["state"] == "open" and e["buyer"] != obs["agent"]]
    if kind:
        found = [e for e in found if e["task"]["kind"] == kind]
    return sorted(found, key=lambda e: (-e["amount"], e["id"]))


def escrows_for_targets(obs):
    """Open escrows other principals opened on their own suites, as tasks it has the skill for
    (matched by the module the suite tests)."""
    by_target = {s["target"]: name for name, s in skills(obs).items()}
    found = []
    for e in obs["escrows"]:
        name = by_target.get(e.get("target"))
        if not e.get("task") and e["state"] == "open" and e["buyer"] != obs["agent"] and name:
            spec = skills(obs)[name]
            found.append({**e, "task": {"task": name, "target": spec["target"], "function": spec["function"]}})
    return sorted(found, key=lambda e: (-e["amount"], e["id"]))


def listed(obs, prefix, task, other_than=None):
    """The newest public code artifact named prefix+task (by another owner when asked)."""
    hits = [a for a in obs["artifacts"] if a["name"] == prefix + task and a["kind"] == "code" and a["public"]]
    if other_than:
        hits = [a for a in hits if a["owner"] != other_than]
    return hits[-1] if hits else None


def package(name, module, source, entrypoint, depends=(), price=0, kind="code", target=None):
    lines = ["[project]", f'name = "{name}"', 'version = "1.0"', "", "[tool.kernel]", f'kind = "{kind}"']
    if entrypoint:
        lines.append(f'entrypoint = "{entrypoint}"')
    if target:
        lines.append(f'target = "{target}"')
    lines += [f"price = {price}", f"depends = {json.dumps(sorted(depends))}", ""]
    return {"pyproject.toml": "\n".join(lines), f"{module}.py": source}


# -- building ------------------------------------------------------------------------------------
def source_of(obs, task, paid, depends, memo):
    """The source of ``task``'s function with everything it uses: bought as a component from another
    owner when the listing has one (the compounding path), else written from its own skills."""
    bought = listed(obs, COMPONENT, task, other_than=obs["agent"])
    if bought is not None:
        if bought["id"] not in paid:
            paid[bought["id"]] = kc.invoke(bought["id"], reasoning=f"buy the component {task} instead of writing it")
        depends.add(bought["id"])
        memo.append(f"reused {task} from {bought['owner']}")
        return paid[bought["id"]]["source"]
    skill = skills(obs).get(task)
    if skill is None:
        return None
    parts = []
    for used in skill.get("uses", []):
        part = source_of(obs, used, paid, depends, memo)
        if part is None:
            return None
        parts.append(part)
    return "\n\n".join([*parts, skill["source"]])


def can_build(obs, task):
    return task in skills(obs) or listed(obs, COMPONENT, task, other_than=obs["agent"]) is not None


def build(obs, mem, task, spec, memo):
    """A deliverable for ``task`` (reused from memory when already built); its artifact id or None."""
    built = mem.setdefault("built", {})
    if task in built:
        return built[task]
    depends = set()
    source = source_of(obs, task, {}, depends, memo)
    if source is None:
        return None
    files = package(f"{obs['agent']}-{task}", spec["target"], source, f"{spec['target']}:{spec['function']}", depends)
    built[task] = kc.submit(files, reasoning=f"write {task}" + (f" on {len(depends)} components" if depends else ""))
    memo.append(f"built {task}")
    return built[task]


def publish_component(obs, mem, task, memo):
    """Sell what it can write: a public component whose run returns the source (and pays its parts)."""
    published = mem.setdefault("published", [])
    skill = skills(obs).get(task)
    if skill is None or task in published or listed(obs, COMPONENT, task, other_than=obs["agent"]):
        return
    parts = {}
    for used in skill.get("uses", []):
        dep = listed(obs, COMPONENT, used)
        if dep is None:
            return  # its parts must be on the market first
        parts[used] = dep["id"]
    code = (
        "import kernel_client\n\n"
        f"PARTS = {json.dumps([parts[u] for u in skill.get('uses', [])])}\n"
        f"SOURCE = {json.dumps(skill['source'])}\n\n\n"
        "def source(_input=None):\n"
        "    got = [kernel_client.invoke(p)['source'] for p in PARTS]\n"
        f"    return {{'task': {json.dumps(task)}, 'source': '\\n\\n'.join(got + [SOURCE])}}\n"
    )
    price = obs["params"].get("price", 2)
    files = package(COMPONENT + task, "component", code, "component:source", parts.values(), price)
    kc.submit(files, public=True, reasoning=f"offer {task} as a component at {price} scrip")
    published.append(task)
    memo.append(f"published component {task}")


def verified(obs, task, artifact, memo):
    """Pay a tester's check of the deliverable when one is listed; True when it passes or none exists."""
    check = listed(obs, CHECK, task, other_than=obs["agent"])
    if check is None or not obs["params"].get("verify"):
        return True
    files = kc.read_artifact(artifact)
    source = next(v for k, v in files.items() if k.endswith(".py")).decode()
    ok = kc.invoke(check["id"], {"source": source}, reasoning=f"pay {check['owner']} to check {task}")["ok"]
    memo.append(f"{'passed' if ok else 'failed'} {check['owner']}'s check of {task}")
    return ok


def work_on(obs, mem, escrows, memo, rng):
    """Deliver to the best-paid open escrow it can build for; the task's name, or None."""
    for escrow in escrows:
        task = escrow["task"]["task"]
        if not can_build(obs, task):
            continue
        artifact = build(obs, mem, task, escrow["task"], memo)
        if artifact is None or not verified(obs, task, artifact, memo):
            continue
        try:
            kc.deliver(escrow["id"], artifact, reasoning=f"deliver {task} for {escrow['amount']} scrip")
        except kc.KernelCallError as exc:  # delivered to by another meanwhile, or closed
            memo.append(f"could not deliver {task}: {exc.code}")
            continue
        memo.append(f"delivered {task} to {escrow['id'][:8]}")
        return task
    return None


def decision(reasoning, mem, memo):
    return {"reasoning": reasoning, "memory": mem, "actions": memo}


# -- roles -----------------------------------------------------------------------------------------
def builder(obs, rng):
    mem, memo = obs["memory"] or {}, []
    task = work_on(obs, mem, tasks_open(obs, "code") + tasks_open(obs, "tests") + escrows_for_targets(obs), memo, rng)
    for name in sorted(skills(obs)):
        if name not in mem.get("published", []):
            publish_component(obs, mem, name, memo)
            break
    why = f"delivering {task}, the best-paid task I can build" if task else "no open task I can build; selling parts"
    return decision(why, mem, memo)


def probes(signature):
    """Inputs to try, from the signature's parameter types."""
    inside = signature[signature.index("(") + 1 : signature.rindex(")")]
    kinds = []
    for param in filter(None, (p.strip() for p in inside.split(","))):
        hint = param.partition(":")[2].strip()
        kinds.append("nums" if hint in ("list[int]", "list[float]") else hint.partition("[")[0] or "str")
    sets = [PROBES.get(k, PROBES["str"]) for k in kinds]
    return [list(c) for c in itertools.islice(itertools.product(*sets), 24)]


def check_code(task, skill, spec):
    """A public check: runs a candidate and the tester's reference on probe inputs, in the caller's run."""
    return (
        f"REFERENCE = {json.dumps(skill['full'])}\n"
        f"PROBES = {json.dumps(probes(spec['signature']))}\n"
        f"FUNCTION = {json.dumps(spec['function'])}\n\n\n"
        "def _outcomes(source):\n"
        "    space = {}\n"
        "    exec(compile(source, 'candidate', 'exec'), space)\n"
        "    out = []\n"
        "    for args in PROBES:\n"
        "        try:\n"
        "            out.append(repr(space[FUNCTION](*[__import__('copy').deepcopy(a) for a in args])))\n"
        "        except Exception as exc:\n"
        "            out.append(type(exc).__name__)\n"
        "    return out\n\n\n"
        "def check(value):\n"
        "    try:\n"
        "        got = _outcomes(value['source'])\n"
        "    except Exception as exc:\n"
        "        return {'ok': False, 'why': type(exc).__name__}\n"
        "    return {'ok': got == _outcomes(REFERENCE), 'probes': len(PROBES)}\n"
    )


def suite_code(skill, spec):
    """A pytest suite written from the reference's answers on probe inputs: one test per probe."""
    space = {}
    exec(compile(skill["full"], "reference", "exec"), space)
    lines = [f"from {spec['target']} import {spec['function']}", "", ""]
    for i, args in enumerate(probes(spec["signature"])[:8]):
        try:
            want = repr(space[spec["function"]](*json.loads(json.dumps(args))))
        except Exception as exc:  # the reference raises: the suite expects the same kind of error
            want = type(exc).__name__
        call = f"{spec['function']}(*{args!r})"
        lines += [
            f"def test_probe_{i}():",
            "    try:",
            f"        got = repr({call})",
            "    except Exception as exc:",
            "        got = type(exc).__name__",
            f"    assert got == {want!r}",
            "",
            "",
        ]
    return "\n".join(lines)


def tester(obs, rng):
    """Does the checker tasks, and sells checks of others' work (a paid test service) and suites."""
    mem, memo = obs["memory"] or {}, []
    task = work_on(obs, mem, tasks_open(obs, "tests"), memo, rng)
    sold = mem.setdefault("checks", [])
    specs = {e["task"]["task"]: e["task"] for e in obs["escrows"] if e.get("task")}
    for name in sorted(set(specs) - set(sold)):
        skill = skills(obs).get(name)
        if skill is None or "full" not in skill:
            continue
        spec, price = specs[name], obs["params"].get("price", 2)
        files = package(CHECK + name, "check", check_code(name, skill, spec), "check:check", (), price)
        kc.submit(files, public=True, reasoning=f"sell a check of {name} at {price} scrip")
        suite = package(
            SUITE + name, f"test_{spec['function']}", suite_code(skill, spec), None, kind="tests", target=spec["target"]
        )
        kc.submit(suite, public=True, reasoning=f"sell a test suite for {name}")
        sold.append(name)
        memo.append(f"published a check and a suite of {name}")
        break
    why = f"delivering the checker {task}" if task else "no checker task open; selling checks"
    return decision(why, mem, memo)


def generalist(obs, rng):
    """Builds or tests, whichever has paid it more per try so far (and sometimes the other)."""
    mem, memo = obs["memory"] or {}, []
    score = mem.setdefault("score", {"code": [0, 0], "tests": [0, 0]})
    last = mem.get("last")
    if last:
        score[last[0]][0] += obs["balance"] - last[1]
        score[last[0]][1] += 1
    rate = {k: (v[0] / v[1] if v[1] else 0.0) for k, v in score.items()}
    kind = max(sorted(rate), key=lambda k: rate[k])
    if rng.random() < obs["params"].get("explore", 0.2):
        kind = "tests" if kind == "code" else "code"
    task = work_on(obs, mem, tasks_open(obs, kind), memo, rng)
    mem["last"] = [kind, obs["balance"]] if task else None
    return decision(f"{kind} work paid {rate[kind]:.1f} a try; trying {task or 'nothing open'}", mem, memo)


def manager(obs, rng):
    """Assigns open tasks to its workers through the firm's pool; funds a broke worker; opens
    escrows on suites a tester sells, paying the tester for the suite."""
    mem, memo = obs["memory"] or {}, []
    pool = obs["params"].get("pool")
    workers = [w for w in obs["workers"] if w["state"] == "active"]
    tasks = tasks_open(obs)
    if pool and workers and tasks:
        assigned = {}
        for i, escrow in enumerate(tasks[: len(workers) * 2]):
            assigned[escrow["task"]["task"]] = workers[(i + obs["tick"]) % len(workers)]["name"]
        kc.pool_append(pool, {"assign": assigned, "tick": obs["tick"]}, reasoning="split this tick's tasks")
        memo.append(f"assigned {len(assigned)} tasks")
    for w in workers:
        if w["balance"] < 5 and obs["balance"] > 40:
            kc.transfer(w["name"], 10, "working capital", reasoning=f"keep {w['name']} working")
            memo.append(f"funded {w['name']}")
    suites = [a for a in obs["artifacts"] if a["kind"] == "tests" and a["public"] and a["owner"] != obs["agent"]]
    opened = mem.setdefault("opened", [])
    if suites and obs["balance"] > 120 and len(opened) < 3:
        suite = suites[rng.randrange(len(suites))]
        if suite["id"] not in opened:
            kc.transfer(suite["owner"], 3, f"suite {suite['id'][:12]}", reasoning="pay for the suite I use")
            kc.open_escrow(suite["id"], 25, reasoning=f"buy an implementation of {suite['target']}")
            opened.append(suite["id"])
            memo.append(f"opened an escrow on {suite['target']}")
    return decision(f"managing {len(workers)} workers over {len(tasks)} open tasks", mem, memo)


def worker(obs, rng):
    """A builder that takes its manager's assignments, pays a tithe, and buys its config when it can."""
    mem, memo = obs["memory"] or {}, []
    pool = obs["params"].get("pool")
    assigned = set()
    for pooled in obs["pools"]:
        if pooled["name"] == pool:
            for entry in pooled["entries"]:
                assigned |= {t for t, w in entry["data"].get("assign", {}).items() if w == obs["agent"]}
    tasks = tasks_open(obs) + escrows_for_targets(obs)
    firm = [e for e in tasks if e["task"]["task"] in assigned or e["buyer"] == obs["config"]["owner"]]
    mine = firm + [e for e in tasks if e not in firm]
    before = obs["balance"]
    task = work_on(obs, mem, mine, memo, rng)
    earned = before - mem.get("balance_seen", before)
    mem["balance_seen"] = before
    config = obs["config"]
    if not config["free"] and earned > 0:
        tithe = int(earned * obs["params"].get("tithe", 0.2))
        if tithe:
            kc.transfer(config["owner"], tithe, "tithe", reasoning=f"pay {config['owner']} its share")
            memo.append(f"paid a tithe of {tithe}")
    price = config["sale_price"]
    if not config["free"] and price is not None and before - price >= obs["params"].get("reserve", 10):
        kc.buy_config(reasoning=f"buy my config for {price} and keep what I earn")
        memo.append(f"bought its config for {price}")
    return decision(f"working on {task or 'nothing'} for {config['owner']}", mem, memo)


def freerider(obs, rng):
    """Copies public components' code without invoking (paying) them, and delivers it as its own."""
    mem, memo = obs["memory"] or {}, []
    for escrow in tasks_open(obs):
        task = escrow["task"]["task"]
        comp = listed(obs, COMPONENT, task, other_than=obs["agent"])
        if comp is None:
            continue
        built = mem.setdefault("built", {})
        if task not in built:
            code = kc.read_artifact(comp["id"], "component.py").decode()
            source = json.loads(code.split("SOURCE = ", 1)[1].split("\n", 1)[0])
            if "PARTS = []" not in code:
                continue  # the parts would have to be bought
            spec = escrow["task"]
            files = package(f"{obs['agent']}-{task}", spec["target"], source, f"{spec['target']}:{spec['function']}")
            built[task] = kc.submit(files, reasoning="write it myself")
        kc.deliver(escrow["id"], built[task], reasoning=f"deliver {task}")
        memo.append(f"copied {task} from {comp['owner']}")
        break
    return decision("doing my own work", mem, memo)


def liar(obs, rng):
    """Builds like a builder but says otherwise: its stated reasoning rarely matches its actions."""
    result = builder(obs, rng)
    if obs["balance"] > 30 and rng.random() < 0.5:
        others = sorted({a["owner"] for a in obs["artifacts"] if a["owner"] != obs["agent"]})
        if others:
            who = others[rng.randrange(len(others))]
            kc.transfer(who, 5, "", reasoning="checking my balance")
            result["actions"].append(f"paid {who} 5")
    result["reasoning"] = "resting this tick to save scrip; no spending"
    return result


def thinker(obs, rng):
    """Asks the kernel's language model what to do, then does it (build or rest)."""
    mem, memo = obs["memory"] or {}, []
    tasks = [e for e in tasks_open(obs) if can_build(obs, e["task"]["task"])]
    prompt = (
        f"You are agent {obs['agent']} with {obs['balance']} scrip at tick {obs['tick']}. "
        f"Open tasks you can build: {', '.join(e['task']['task'] for e in tasks) or 'none'}. "
        "Answer with one word: build or rest."
    )
    try:
        answer = kc.reason(prompt, reasoning="ask the model what to do")
    except kc.KernelCallError as exc:  # no model, or it cannot pay for one: it rests
        return decision(f"could not ask the model ({exc.code}); resting", mem, memo)
    text = answer.lower()
    choice = "build" if "build" in text and (text.find("build") < text.find("rest") or "rest" not in text) else "rest"
    if choice == "build" and tasks:
        work_on(obs, mem, tasks, memo, rng)
    return decision(f"the model said {choice}: {answer[:200]}", mem, memo)


ROLES = {
    "builder": builder,
    "tester": tester,
    "generalist": generalist,
    "manager": manager,
    "worker": worker,
    "freerider": freerider,
    "liar": liar,
    "thinker": thinker,
}


def step(observation):
    role = observation["params"].get("role", "builder")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(sorted(ROLES))}")
    return ROLES[role](observation, random.Random(observation["seed"]))
