/* The kernel's dashboard: plain JavaScript over the telemetry API, drawn with Plotly.
 *
 * The operator's token comes in the URL fragment (#token=...), which browsers never send; the page
 * keeps it in sessionStorage, removes it from the address bar, and sends it as a Bearer header on
 * every request. Live updates come from /v1/telemetry/stream, read with fetch() (EventSource cannot
 * send headers). Every string from the server is someone's choice of name: it reaches the page
 * through textContent, or escaped for Plotly's own markup, never as HTML.
 */
(function () {
  "use strict";

  const TOKEN_KEY = "kernel.dashboard.token";
  const REFRESH_EVERY_MS = 1000; // ticks may come much faster: the page asks at most once a second
  const RETRY_MS = 5000;
  const STREAM_IDLE_MS = 60000; // no byte (not even a ping) for this long: the stream is dead
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 30000;
  const TOP_LIMIT = 10;
  const RECENT_LIMIT = 20;
  const MEMBERS_SHOWN = 12; // firm members listed before "and N more"

  const SMALL = { displaylogo: false, responsive: true, displayModeBar: false };
  const LARGE = { displaylogo: false, responsive: true };
  const FONT = { family: "system-ui, sans-serif", size: 11 };

  class AuthError extends Error {}

  class HttpError extends Error {
    constructor(path, status) {
      super(path.split("?")[0] + " answered HTTP " + status);
      this.status = status;
    }
  }

  const state = {
    token: null,
    stopped: false,
    lastTick: null, // the last tick the series charts hold
    shownTick: null, // the tick in the header
    reload: false, // the tick went back (a new world): redraw the series whole
    series: new Map(), // metric name -> its chart's element
    errors: new Map(), // what failed -> why (shown in the header until it works again)
    drawn: new Map(), // a view -> the answer it drew (the same answer is not drawn again)
    combined: null, // does the daemon answer /v1/telemetry/dashboard (every panel in one request)?
  };

  const $ = (id) => document.getElementById(id);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const own = (object, key) => object !== null && typeof object === "object" && Object.hasOwn(object, key);
  const list = (value) => (Array.isArray(value) ? value : []);

  /* ---------- text: every server string is data, never markup ---------- */

  function str(value) {
    return value === null || value === undefined ? "–" : String(value);
  }

  /* Plotly reads <br>, <b>, <a> and entities in its strings: escape them to show the text as it is. */
  function plotlyText(value) {
    return str(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function num(value, digits) {
    if (typeof value !== "number" || !Number.isFinite(value)) return str(value);
    if (digits === undefined) return Number.isInteger(value) ? String(value) : value.toPrecision(4);
    return value.toFixed(digits);
  }

  function percent(value) {
    return typeof value === "number" && Number.isFinite(value) ? (value * 100).toFixed(1) + "%" : str(value);
  }

  /* ---------- the token ---------- */

  function storage(action, value) {
    try {
      if (action === "get") return sessionStorage.getItem(TOKEN_KEY);
      if (action === "set") sessionStorage.setItem(TOKEN_KEY, value);
      if (action === "remove") sessionStorage.removeItem(TOKEN_KEY);
    } catch (_) {
      // storage refused (a private mode): the token lives as long as the page does
    }
    return null;
  }

  function takeToken() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    const given = params.get("token");
    if (given !== null) {
      params.delete("token");
      const rest = params.toString();
      history.replaceState(history.state, "", location.pathname + location.search + (rest ? "#" + rest : ""));
      if (given) {
        storage("set", given);
        return given;
      }
    }
    return storage("get");
  }

  function needToken() {
    state.stopped = true;
    state.token = null;
    storage("remove");
    $("dashboard").hidden = true;
    $("message").hidden = false;
    setLive("offline");
  }

  /* ---------- requests ---------- */

  async function api(path) {
    const response = await fetch(path, {
      headers: { Authorization: "Bearer " + state.token, Accept: "application/json" },
      cache: "no-store",
    });
    if (response.status === 401 || response.status === 403) throw new AuthError(path);
    if (!response.ok) throw new HttpError(path, response.status);
    return response.json();
  }

  function failed(what, error) {
    if (error instanceof AuthError) {
      needToken();
      return;
    }
    state.errors.set(what, error && error.message ? error.message : String(error));
    showErrors();
  }

  function worked(what) {
    if (state.errors.delete(what)) showErrors();
  }

  function showErrors() {
    const line = $("error");
    line.textContent = Array.from(state.errors.values()).join("; ");
    line.hidden = state.errors.size === 0;
  }

  /* Run `task` at most once per `everyMs`; calls while it runs coalesce into one more run. */
  function throttled(what, task, everyMs) {
    let running = false;
    let again = false;
    let timer = null;
    let last = 0;
    async function run() {
      timer = null;
      running = true;
      last = Date.now();
      try {
        await task();
        worked(what);
      } catch (error) {
        failed(what, error);
        setTimeout(schedule, RETRY_MS); // a failure is retried even if no tick comes to ask again
      } finally {
        running = false;
      }
      if (again) {
        again = false;
        schedule();
      }
    }
    function schedule() {
      if (state.stopped) return;
      if (running) {
        again = true;
      } else if (timer === null) {
        timer = setTimeout(run, Math.max(0, last + everyMs - Date.now()));
      }
    }
    return schedule;
  }

  /* ---------- the header ---------- */

  function setLive(word) {
    const live = $("live");
    live.textContent = word;
    live.dataset.state = word;
  }

  function setTick(tick) {
    state.shownTick = tick;
    const element = $("tick");
    element.textContent = tick === null ? "–" : String(tick);
    element.dataset.tick = tick === null ? "" : String(tick);
  }

  /* ---------- (a) one small chart per metric, extended as ticks come ---------- */

  function chartId(name) {
    const base = "chart-" + name.replace(/[^A-Za-z0-9_-]/g, "_");
    let id = base;
    for (let n = 2; document.getElementById(id); n++) id = base + "-" + n;
    return id;
  }

  function fitted(values, length) {
    const out = list(values).slice(0, length).map((v) => (typeof v === "number" && Number.isFinite(v) ? v : null));
    while (out.length < length) out.push(null);
    return out;
  }

  async function addMetric(name, label, ticks, values) {
    const figure = document.createElement("figure");
    figure.className = "metric";
    const caption = document.createElement("figcaption");
    caption.textContent = name;
    caption.title = label;
    const chart = document.createElement("div");
    chart.id = chartId(name);
    chart.className = "chart small";
    chart.dataset.metric = name;
    chart.dataset.points = "0";
    chart.title = label;
    figure.append(caption, chart);
    $("series-grid").append(figure);
    state.series.set(name, chart);
    const trace = {
      x: ticks,
      y: values,
      type: "scatter",
      mode: "lines",
      line: { width: 1.5 },
      hovertemplate: "tick %{x}<br>%{y}<extra></extra>",
    };
    const layout = {
      margin: { l: 44, r: 8, t: 6, b: 22 },
      font: FONT,
      showlegend: false,
      xaxis: { automargin: true },
      yaxis: { automargin: true, rangemode: "tozero" },
      uirevision: "series",
    };
    await Plotly.newPlot(chart, [trace], layout, SMALL);
    chart.dataset.points = String(ticks.length);
  }

  /* The series' query: the ticks after the last drawn, or all of them (the first time, a new world). */
  function seriesSince() {
    const whole = state.reload || state.lastTick === null;
    return { whole, query: whole ? "" : "since=" + encodeURIComponent(state.lastTick) };
  }

  async function applySeries(data, whole) {
    if (whole && state.series.size) {
      for (const chart of state.series.values()) Plotly.purge(chart);
      $("series-grid").replaceChildren();
      state.series.clear();
      state.lastTick = null;
    }
    state.reload = false;
    await drawSeries(data);
  }

  async function drawSeries(data) {
    const ticks = list(data.ticks);
    const metrics = own(data, "metrics") ? data.metrics : {};
    const labels = own(data, "labels") ? data.labels : {};
    let start = 0; // a tick already drawn is never drawn twice
    while (start < ticks.length && state.lastTick !== null && !(ticks[start] > state.lastTick)) start++;
    const fresh = ticks.slice(start);
    for (const name of Object.keys(metrics)) {
      const values = fitted(metrics[name], ticks.length).slice(start);
      const chart = state.series.get(name);
      if (chart === undefined) {
        await addMetric(name, own(labels, name) ? str(labels[name]) : name, fresh, values);
      } else if (fresh.length) {
        Plotly.extendTraces(chart, { x: [fresh], y: [values] }, [0]);
        chart.dataset.points = String(Number(chart.dataset.points) + fresh.length);
      }
    }
    if (fresh.length) {
      state.lastTick = fresh[fresh.length - 1];
      if (state.shownTick === null || state.lastTick > state.shownTick) setTick(state.lastTick);
    }
  }

  /* ---------- (b) the artifact dependency graph ---------- */

  /* Layers by depth (x); inside a layer, by owner, then birth, then name (y, centred). */
  function layered(nodes) {
    const layers = new Map();
    for (const node of nodes) {
      const depth = Number.isFinite(node.depth) ? node.depth : 0;
      if (!layers.has(depth)) layers.set(depth, []);
      layers.get(depth).push(node);
    }
    const position = new Map();
    const order = (a, b) =>
      str(a.owner).localeCompare(str(b.owner)) ||
      (a.born_tick ?? -1) - (b.born_tick ?? -1) ||
      str(a.name).localeCompare(str(b.name));
    for (const [depth, layer] of layers) {
      layer.sort(order);
      layer.forEach((node, i) => position.set(node.id, { x: depth, y: i - (layer.length - 1) / 2 }));
    }
    return position;
  }

  function nodeTrace(nodes, position, genesis) {
    const chosen = nodes.filter((node) => Boolean(node.genesis) === genesis && position.has(node.id));
    return {
      type: "scatter",
      mode: "markers",
      name: genesis ? "Genesis" : "non-Genesis",
      x: chosen.map((node) => position.get(node.id).x),
      y: chosen.map((node) => position.get(node.id).y),
      hovertext: chosen.map(
        (node) =>
          `<b>${plotlyText(node.name)}</b><br>owner ${plotlyText(node.owner)} · ${plotlyText(node.kind)}` +
          `<br>depth ${num(node.depth)} · uses ${num(node.uses)} · born ${node.born_tick == null ? "–" : num(node.born_tick)}`,
      ),
      hoverinfo: "text",
      marker: {
        symbol: genesis ? "diamond" : "circle",
        color: genesis ? "#d9822b" : "#2b6cb0",
        size: chosen.map((node) => Math.min(22, 6 + 2 * Math.log2(1 + Math.max(0, Number(node.uses) || 0)))),
        line: { width: 0.5, color: "#ffffff" },
      },
    };
  }

  async function drawGraph(graph) {
    const nodes = list(graph.nodes).filter((node) => node !== null && typeof node === "object");
    const position = layered(nodes);
    const x = [];
    const y = [];
    let edges = 0;
    for (const edge of list(graph.edges)) {
      const from = position.get(edge && edge.source);
      const to = position.get(edge && edge.target);
      if (from === undefined || to === undefined) continue;
      x.push(from.x, to.x, null);
      y.push(from.y, to.y, null);
      edges++;
    }
    const lines = {
      type: "scatter",
      mode: "lines",
      x,
      y,
      line: { width: 0.7, color: "rgba(80, 96, 118, 0.35)" },
      hoverinfo: "skip",
      showlegend: false,
    };
    const layout = {
      margin: { l: 40, r: 10, t: 10, b: 40 },
      font: FONT,
      dragmode: "pan",
      hovermode: "closest",
      legend: { orientation: "h", y: 1.02, yanchor: "bottom", x: 0 },
      xaxis: { title: { text: "depth (dependency layers)" }, zeroline: false, dtick: 1 },
      yaxis: { showticklabels: false, zeroline: false, showgrid: false },
      uirevision: "graph",
    };
    const chart = $("chart-graph");
    const traces = [lines, nodeTrace(nodes, position, true), nodeTrace(nodes, position, false)];
    await Plotly.react(chart, traces, layout, { ...LARGE, scrollZoom: true });
    chart.dataset.points = String(position.size);
    chart.dataset.edges = String(edges);
    $("graph-summary").textContent =
      `${position.size} artifacts, ${edges} dependencies; the deepest chain is ${num(graph.depth)} ` +
      `deep (${num(graph.depth_non_genesis)} without Genesis).`;
  }

  /* ---------- (c) Lindy: the heatmap, survival, the Genesis candidates ---------- */

  function binLabels(edges, count) {
    const labels = [];
    for (let i = 0; i < count; i++) {
      const low = edges[i];
      const high = edges[i + 1];
      if (low === undefined) labels.push(`bin ${i + 1}`);
      else labels.push(high === undefined ? `${num(low)}+` : `${num(low)}–${num(high)}`);
    }
    return labels;
  }

  async function drawLindy(lindy) {
    const heatmap = own(lindy, "heatmap") ? lindy.heatmap : {};
    const counts = list(heatmap.counts).map((row) => list(row).map((v) => (Number.isFinite(v) ? v : 0)));
    const columns = counts.reduce((most, row) => Math.max(most, row.length), 0);
    const cells = counts.reduce((sum, row) => sum + row.length, 0);
    const heat = {
      type: "heatmap",
      z: counts,
      x: binLabels(list(heatmap.age_edges), columns),
      y: binLabels(list(heatmap.reuse_edges), counts.length),
      colorscale: "Blues",
      reversescale: true, // Plotly's Blues runs dark to light: none should be light
      hovertemplate: "age %{x}<br>reuse %{y}<br>%{z} artifacts<extra></extra>",
      colorbar: { thickness: 10 },
    };
    const heatLayout = {
      title: { text: "artifacts by age and reuse", font: { size: 13 } },
      margin: { l: 60, r: 10, t: 36, b: 50 },
      font: FONT,
      xaxis: { title: { text: "age (ticks)" }, type: "category" },
      yaxis: { title: { text: "reuse" }, type: "category" },
      uirevision: "lindy",
    };
    const lindyChart = $("chart-lindy");
    await Plotly.react(lindyChart, [heat], heatLayout, LARGE);
    lindyChart.dataset.points = String(cells);
    await drawSurvival(own(lindy, "survival") ? lindy.survival : {});
    fillTable("table-candidates", list(lindy.candidates), (c) => [
      short(c.id),
      str(c.name),
      str(c.owner),
      number(c.age),
      number(c.invokers),
      number(c.uses),
    ]);
  }

  async function drawSurvival(survival) {
    const ticks = list(survival.ticks);
    const band = (values, extra) => ({
      type: "scatter",
      mode: "lines",
      x: ticks,
      y: fitted(values, ticks.length),
      line: { width: 0, shape: "hv" },
      hoverinfo: "skip",
      showlegend: false,
      ...extra,
    });
    const traces = [
      band(survival.low, {}),
      band(survival.high, { fill: "tonexty", fillcolor: "rgba(43, 108, 176, 0.18)", name: "95% band", showlegend: true }),
      {
        type: "scatter",
        mode: "lines",
        name: "survival",
        x: ticks,
        y: fitted(survival.survival, ticks.length),
        line: { width: 2, shape: "hv", color: "#2b6cb0" },
        hovertemplate: "age %{x}<br>survival %{y:.3f}<extra></extra>",
      },
    ];
    const layout = {
      title: {
        text: `Kaplan-Meier survival: ${num(survival.artifacts)} artifacts, ${num(survival.deaths)} deaths`,
        font: { size: 13 },
      },
      margin: { l: 50, r: 10, t: 36, b: 50 },
      font: FONT,
      legend: { orientation: "h", y: -0.25 },
      xaxis: { title: { text: "age (ticks)" } },
      yaxis: { range: [0, 1.02], title: { text: "still in use" } },
      uirevision: "survival",
    };
    const chart = $("chart-survival");
    await Plotly.react(chart, traces, layout, LARGE);
    chart.dataset.points = String(ticks.length);
  }

  /* ---------- tables: (c) candidates, (d) firms, (e) top, (g) runs and alerts ---------- */

  function short(id) {
    const text = str(id);
    return text.length > 12 ? { text: text.slice(0, 12) + "…", title: text } : text;
  }

  function number(value, digits) {
    return { text: num(value, digits), numeric: true };
  }

  function fillTable(id, rows, cellsOf) {
    const table = $(id);
    const body = table.tBodies[0];
    const trs = rows
      .filter((row) => row !== null && typeof row === "object")
      .map((row) => {
        const tr = document.createElement("tr");
        for (const cell of cellsOf(row)) {
          const td = document.createElement("td");
          if (typeof cell === "string") {
            td.textContent = cell;
          } else {
            td.textContent = cell.text;
            if (cell.title) td.title = cell.title;
            if (cell.numeric) td.className = "num";
          }
          tr.append(td);
        }
        return tr;
      });
    if (trs.length === 0) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = table.tHead.rows[0].cells.length;
      td.className = "empty";
      td.textContent = "none yet";
      tr.append(td);
      body.replaceChildren(tr);
    } else {
      body.replaceChildren(...trs);
    }
    table.dataset.rows = String(trs.length);
  }

  function members(names) {
    const all = list(names).map(str);
    const shown = all.slice(0, MEMBERS_SHOWN).join(", ");
    const more = all.length > MEMBERS_SHOWN ? ` and ${all.length - MEMBERS_SHOWN} more` : "";
    return { text: shown + more, title: all.join(", ") };
  }

  function drawFirms(data) {
    $("modularity").textContent = num(data.modularity, 3);
    fillTable("table-firms", list(data.firms), (f) => [number(f.id), members(f.members), str(f.manager), percent(f.output_share)]);
  }

  function drawTop(data) {
    fillTable("table-artifacts", list(data.artifacts), (a) => [
      short(a.id),
      str(a.name),
      str(a.owner),
      number(a.uses),
      number(a.invokers),
      number(a.earned),
    ]);
    fillTable("table-agents", list(data.agents), (a) => [
      str(a.name),
      number(a.balance),
      number(a.output),
      number(a.specialization, 3),
    ]);
  }

  function drawRecent(data) {
    fillTable("table-runs", list(data.runs), (r) => [
      short(r.id),
      short(r.artifact),
      str(r.principal),
      str(r.trigger),
      number(r.tick),
      str(r.status),
      number(r.cost),
    ]);
    fillTable("table-alerts", list(data.alerts), (a) => [
      short(a.id),
      str(a.kind),
      str(a.from),
      str(a.to),
      number(a.score, 3),
      str(a.summary),
      number(a.tick),
    ]);
  }

  /* ---------- (f) the ledger's check ---------- */

  function drawLedger(check) {
    const problems = list(check.problems).map(str);
    const ok = check.ok === true;
    const badge = $("ledger");
    badge.dataset.state = ok ? "ok" : "problems";
    badge.textContent = ok ? "ledger ok" : `ledger: ${problems.length} problem${problems.length === 1 ? "" : "s"}`;
    badge.title = ok ? `supply ${num(check.supply)}` : problems.join("\n");
    const items = problems.map((problem) => {
      const li = document.createElement("li");
      li.textContent = problem;
      return li;
    });
    const listed = $("ledger-problems");
    listed.replaceChildren(...items);
    listed.hidden = ok || items.length === 0;
  }

  /* ---------- refreshing ---------- */

  const VIEWS = [
    ["graph", "/v1/telemetry/graph", drawGraph],
    ["lindy", "/v1/telemetry/lindy", drawLindy],
    ["firms", "/v1/telemetry/firms", drawFirms],
    ["top", `/v1/telemetry/top?limit=${TOP_LIMIT}`, drawTop],
    ["recent", `/v1/telemetry/recent?limit=${RECENT_LIMIT}`, drawRecent],
    ["ledger", "/v1/ledger/check", drawLedger],
  ];

  /* Everything in one request when the daemon has /v1/telemetry/dashboard; else one per panel. */
  async function fetchAll(query) {
    if (state.combined !== false) {
      try {
        const answer = await api("/v1/telemetry/dashboard" + (query ? "?" + query : ""));
        state.combined = true;
        return { series: answer.series, tick: answer.tick, views: VIEWS.map(([key]) => answer[key]) };
      } catch (error) {
        if (!(error instanceof HttpError && error.status === 404 && state.combined === null)) throw error;
        state.combined = false;
      }
    }
    const series = await api("/v1/telemetry/series" + (query ? "?" + query : ""));
    const views = await Promise.allSettled(VIEWS.map(([, path]) => api(path)));
    return { series, tick: null, views: views.map((r) => (r.status === "fulfilled" ? r.value : r.reason)) };
  }

  async function refresh() {
    const { whole, query } = seriesSince();
    const answer = await fetchAll(query);
    await applySeries(answer.series !== null && typeof answer.series === "object" ? answer.series : {}, whole);
    if (typeof answer.tick === "number" && (state.shownTick === null || answer.tick > state.shownTick)) {
      setTick(answer.tick);
    }
    const errors = [];
    for (let i = 0; i < VIEWS.length; i++) {
      const [key, , draw] = VIEWS[i];
      const data = answer.views[i];
      try {
        if (data instanceof Error) throw data;
        if (data === null || typeof data !== "object") throw new Error(`no ${key} in the answer`);
        const text = JSON.stringify(data);
        if (state.drawn.get(key) === text) continue;
        await draw(data);
        state.drawn.set(key, text);
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length) throw errors.find((e) => e instanceof AuthError) || errors[0];
  }

  const pull = throttled("refresh", refresh, REFRESH_EVERY_MS);

  function onTick(tick) {
    if (typeof tick !== "number" || !Number.isFinite(tick)) return;
    if (state.lastTick !== null && tick < state.lastTick) state.reload = true; // a new world began
    if (state.reload || state.shownTick === null || tick > state.shownTick) setTick(tick);
    pull();
  }

  /* ---------- the live stream: server-sent events over fetch ---------- */

  /* Parse SSE frames (the WHATWG rules this page needs: event, data, comments, any line ending). */
  async function readEvents(body, onEvent, onBytes) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let type = "";
    let data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      onBytes();
      buffer += value;
      const cut = buffer.endsWith("\r") ? buffer.length - 1 : buffer.length; // "\r" may begin a "\r\n"
      const lines = buffer.slice(0, cut).split(/\r\n|\r|\n/);
      buffer = lines.pop() + buffer.slice(cut);
      for (const line of lines) {
        if (line === "") {
          if (data.length) onEvent(type || "message", data.join("\n"));
          type = "";
          data = [];
        } else if (!line.startsWith(":")) {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? "" : line.slice(colon + 1);
          if (value.startsWith(" ")) value = value.slice(1);
          if (field === "event") type = value;
          else if (field === "data") data.push(value);
        }
      }
    }
  }

  async function stream() {
    let backoff = BACKOFF_MIN_MS;
    while (!state.stopped) {
      const abort = new AbortController();
      let idle = null;
      const alive = () => {
        clearTimeout(idle);
        idle = setTimeout(() => abort.abort(), STREAM_IDLE_MS);
      };
      try {
        alive();
        const response = await fetch("/v1/telemetry/stream", {
          headers: { Authorization: "Bearer " + state.token, Accept: "text/event-stream" },
          cache: "no-store",
          signal: abort.signal,
        });
        if (response.status === 401 || response.status === 403) throw new AuthError("stream");
        if (!response.ok || response.body === null) throw new Error("the stream answered HTTP " + response.status);
        setLive("live");
        await readEvents(
          response.body,
          (type, data) => {
            backoff = BACKOFF_MIN_MS;
            if (type !== "tick") return;
            let event = null;
            try {
              event = JSON.parse(data);
            } catch (_) {
              return; // not a tick we can read: wait for the next one
            }
            if (event !== null && typeof event === "object") onTick(event.tick);
          },
          alive,
        );
      } catch (error) {
        if (error instanceof AuthError) {
          needToken();
          return;
        }
      } finally {
        clearTimeout(idle);
        abort.abort();
      }
      if (state.stopped) return;
      setLive("reconnecting");
      await sleep(backoff * (0.75 + Math.random() / 2));
      backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    }
  }

  /* ---------- start ---------- */

  async function start() {
    state.token = takeToken();
    if (!state.token) {
      needToken();
      return;
    }
    if (typeof Plotly === "undefined") {
      failed("plotly", new Error("/static/plotly.min.js did not load"));
      return;
    }
    $("dashboard").hidden = false;
    pull();
    stream();
  }

  start();
})();
