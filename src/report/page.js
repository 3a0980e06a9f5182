// egress-scout's report page: draws the inventory embedded in #data (or, live, fetched from
// /api/inventory and kept current from /api/updates). No library, no request elsewhere.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const STATUS_COLOR = { allowed: "#1a7f37", denied: "#cf222e", unrestricted: "#bc4c00" };
  const ROW = 16;
  let model = JSON.parse($("data").textContent);
  let picked = null; // a map node clicked: {side: "w"|"d", index}

  window.addEventListener("error", (e) => fail(e.message));
  // A request the page's policy blocked would be a request leaving the page: say so.
  document.addEventListener("securitypolicyviolation", (e) => fail("blocked " + e.blockedURI));
  function fail(message) {
    const box = $("error");
    box.hidden = false;
    box.textContent = "The page failed: " + message;
  }

  function el(tag, attrs, text) {
    const node = tag.startsWith("svg:")
      ? document.createElementNS(SVG, tag.slice(4))
      : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function filterText() {
    return $("filter").value.trim().toLowerCase();
  }

  // What a filter matches: text of the destination or of the workload.
  function destText(d) {
    return [d.name, d.domain, ...(d.ips || [])].join(" ").toLowerCase();
  }
  function workloadText(w) {
    return [w.namespace, w.name, w.kind, w.key].join(" ").toLowerCase();
  }

  // The edges the filter (or a picked node) keeps.
  function visibleEdges() {
    const f = filterText();
    return model.edges.filter((e) => {
      if (picked && !(picked.side === "w" ? e.w === picked.index : e.d === picked.index)) return false;
      if (!f) return true;
      return destText(model.destinations[e.d]).includes(f) || workloadText(model.workloads[e.w]).includes(f);
    });
  }

  function drawMap(edges) {
    const svg = $("map");
    svg.replaceChildren();
    // Left: workloads by namespace; right: destinations by registrable domain.
    const byGroup = (items, group) => {
      const groups = new Map();
      items.forEach((item, i) => {
        const g = group(item);
        if (!groups.has(g)) groups.set(g, []);
        groups.get(g).push(i);
      });
      return [...groups.entries()].sort((a, b) => a[0].localeCompare(b[0]));
    };
    const layout = (groups) => {
      const y = new Map();
      let row = 1;
      const labels = [];
      for (const [g, members] of groups) {
        labels.push([g, row]);
        row += 1;
        members.sort((a, b) => a - b).forEach((i) => { y.set(i, row * ROW); row += 1; });
        row += 0.5;
      }
      return { y, labels, height: row * ROW };
    };
    const left = layout(byGroup(model.workloads, (w) => w.namespace || "(no namespace)"));
    const right = layout(byGroup(model.destinations, (d) => d.domain || d.name || "(unnamed)"));
    const width = Math.max(900, $("map-box").clientWidth - 4);
    const lx = 260, rx = width - 320;
    svg.setAttribute("width", width);
    svg.setAttribute("height", Math.max(left.height, right.height) + ROW);
    const max = Math.max(1, ...model.edges.map((e) => e.count));
    const shown = new Set(edges);
    const frag = document.createDocumentFragment();
    for (const e of model.edges) {
      const y1 = left.y.get(e.w) - 4, y2 = right.y.get(e.d) - 4, mid = (lx + rx) / 2;
      const path = el("svg:path", {
        class: "edge" + (shown.has(e) ? "" : " dim"),
        d: `M${lx + 6},${y1} C${mid},${y1} ${mid},${y2} ${rx - 6},${y2}`,
        stroke: STATUS_COLOR[e.status] || "#8c959f",
        "stroke-width": (1 + 5 * Math.log1p(e.count) / Math.log1p(max)).toFixed(2),
        "data-status": e.status || "",
      });
      path.appendChild(el("svg:title", {}, `${model.workloads[e.w].key} → ${model.destinations[e.d].name}: ${e.count}` + (e.status ? ` (${e.status})` : "")));
      frag.appendChild(path);
    }
    const touched = { w: new Set(edges.map((e) => e.w)), d: new Set(edges.map((e) => e.d)) };
    const node = (side, i, x, y, text, anchor) => {
      const t = el("svg:text", { x, y, "text-anchor": anchor, class: "node " + side }, text);
      if (!touched[side].has(i)) t.classList.add("dim");
      if (picked && picked.side === side && picked.index === i) t.classList.add("picked");
      t.addEventListener("click", () => {
        picked = picked && picked.side === side && picked.index === i ? null : { side, index: i };
        render();
      });
      frag.appendChild(t);
    };
    for (const [g, row] of left.labels) frag.appendChild(el("svg:text", { x: 4, y: row * ROW, class: "group" }, g));
    for (const [g, row] of right.labels) frag.appendChild(el("svg:text", { x: rx + 4, y: row * ROW, class: "group" }, g));
    model.workloads.forEach((w, i) => node("w", i, lx, left.y.get(i), (w.kind ? w.kind + "/" : "") + w.name, "end"));
    model.destinations.forEach((d, i) => node("d", i, rx + 16, right.y.get(i), d.name || "(unnamed)", "start"));
    svg.appendChild(frag);
  }

  // A sortable table: columns are [title, value of a row, numeric].
  const sorting = {};
  function table(id, columns, rows) {
    const t = $(id);
    const sort = sorting[id];
    if (sort) {
      const [, value, numeric] = columns[sort.col];
      rows = rows.slice().sort((a, b) => {
        const x = value(a), y = value(b);
        const c = numeric ? x - y : String(x).localeCompare(String(y));
        return sort.asc ? c : -c;
      });
    }
    const head = el("tr");
    columns.forEach(([title], col) => {
      const th = el("th", {}, title);
      if (sort && sort.col === col) th.className = sort.asc ? "asc" : "desc";
      th.addEventListener("click", () => {
        sorting[id] = { col, asc: !(sort && sort.col === col && sort.asc) };
        render();
      });
      head.appendChild(th);
    });
    const body = el("tbody");
    for (const r of rows) {
      const tr = el("tr");
      for (const [, value, numeric, cls] of columns) {
        const td = el("td", numeric ? { class: "num" } : {}, String(value(r)));
        if (cls) td.classList.add(...[cls(r)].filter(Boolean));
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    t.replaceChildren(el("thead"), body);
    t.firstChild.appendChild(head);
  }

  function render() {
    const edges = visibleEdges();
    const f = filterText();
    // Per destination and per source: visible edges, their count, the worst verdict. One pass:
    // the tables of a large inventory must not scan every edge per row.
    const rank = { denied: 3, unrestricted: 2, allowed: 1 };
    const per = (n) => Array.from({ length: n }, () => ({ edges: 0, count: 0, status: "" }));
    const byD = per(model.destinations.length), byW = per(model.workloads.length);
    const reached = new Set();
    for (const e of model.edges) reached.add(e.d);
    for (const e of edges) {
      for (const a of [byD[e.d], byW[e.w]]) {
        a.edges += 1;
        a.count += e.count;
        if ((rank[e.status] || 0) > (rank[a.status] || 0)) a.status = e.status;
      }
    }
    const dIdx = [...new Set(edges.map((e) => e.d))];
    // Destinations no edge reaches (none in an inventory) still show when they match.
    model.destinations.forEach((d, i) => {
      if (!picked && !reached.has(i) && (!f || destText(d).includes(f))) dIdx.push(i);
    });
    const wIdx = [...new Set(edges.map((e) => e.w))];
    drawMap(edges);
    table("destinations", [
      ["destination", (i) => model.destinations[i].name || "(unnamed)"],
      ["domain", (i) => model.destinations[i].domain || ""],
      ["addresses", (i) => (model.destinations[i].ips || []).join(" ")],
      ["ports", (i) => (model.destinations[i].ports || []).join(" ")],
      ["count", (i) => model.destinations[i].count, true],
      ["workloads", (i) => byD[i].edges, true],
      ["evidence", (i) => (model.destinations[i].evidence || []).join(" ")],
      ["first seen", (i) => model.destinations[i].first_seen || ""],
      ["last seen", (i) => model.destinations[i].last_seen || ""],
      ["policy", (i) => byD[i].status, false, (i) => byD[i].status],
    ], dIdx);
    table("workloads", [
      ["namespace", (i) => model.workloads[i].namespace || ""],
      ["workload", (i) => (model.workloads[i].kind ? model.workloads[i].kind + "/" : "") + model.workloads[i].name],
      ["destinations", (i) => byW[i].edges, true],
      ["count", (i) => byW[i].count, true],
      ["egress policy", (i) => { const u = model.workloads[i].unrestricted; return u === true ? "none (unrestricted)" : u === false ? "restricted" : ""; }],
      ["policy", (i) => byW[i].status, false, (i) => byW[i].status],
    ], wIdx);
    const dests = dIdx;
    const match = (r) => !f || JSON.stringify(r).toLowerCase().includes(f);
    if (model.checks && model.checks.length) {
      $("checks-section").hidden = false;
      table("checks", [
        ["source", (r) => r.source], ["destination", (r) => r.destination],
        ["port", (r) => (r.port || "") + "/" + r.protocol], ["status", (r) => r.status, false, (r) => r.status],
        ["rules", (r) => (r.rules || []).join("; ")], ["reason", (r) => r.reason], ["count", (r) => r.count, true],
      ], model.checks.filter(match));
    }
    if (model.findings && model.findings.length) {
      $("findings-section").hidden = false;
      table("findings", [
        ["severity", (r) => r.severity || ""], ["kind", (r) => r.kind || ""], ["namespace", (r) => r.namespace || ""],
        ["object", (r) => r.object || ""], ["destination", (r) => r.destination || ""],
        ["port", (r) => (r.port === undefined || r.port === null ? "" : String(r.port))], ["detail", (r) => r.detail || ""],
      ], model.findings.filter(match));
    }
    drawTimeline();
    table("stats", [["counter", (r) => r[0]], ["value", (r) => r[1], true]],
      Object.entries(model.stats || {}).flatMap(([k, v]) => (typeof v === "object" && v !== null
        ? Object.entries(v).map(([r, n]) => [k + ": " + r, n]) : [[k, v]])));
    const n = (x, word) => `${x} ${word}${x === 1 ? "" : "s"}`;
    $("summary").textContent = `${n(model.destinations.length, "external destination")}, ${n(model.workloads.length, "source")}, ${n(model.edges.length, "edge")}` +
      (f || picked ? ` (showing ${n(dests.length, "destination")}, ${n(edges.length, "edge")})` : "") + (model.live ? " · live" : "");
  }

  // First sightings per hour: when each destination was first seen.
  function drawTimeline() {
    const hours = new Map();
    for (const d of model.destinations) {
      if (!d.first_seen) continue;
      const h = d.first_seen.slice(0, 13);
      hours.set(h, (hours.get(h) || 0) + 1);
    }
    const rows = [...hours.entries()].sort();
    const svg = $("timeline");
    svg.replaceChildren();
    const bar = 22, height = 120, max = Math.max(1, ...rows.map((r) => r[1]));
    svg.setAttribute("width", Math.max(200, rows.length * bar + 40));
    svg.setAttribute("height", height + 40);
    rows.forEach(([h, c], i) => {
      const hgt = (c / max) * height;
      const r = el("svg:rect", { x: 20 + i * bar, y: height - hgt + 10, width: bar - 4, height: hgt });
      r.appendChild(el("svg:title", {}, `${h}:00Z: ${c}`));
      svg.appendChild(r);
      svg.appendChild(el("svg:text", { x: 20 + i * bar, y: height + 24 }, h.slice(11) + "h"));
    });
  }

  // The live page: an update is an edge as it now stands, with its destination's domain.
  function apply(u) {
    const src = u.source || {};
    // As the policy check names a source: namespace/workload, namespace/pod, the IP.
    const who = src.workload || (src.pods || [])[0] || "";
    const key = src.other_sources ? "other" : src.namespace && who ? src.namespace + "/" + who : String(src.ip || "-");
    let w = model.workloads.findIndex((x) => x.key === key);
    if (w < 0) {
      model.workloads.push({ key, namespace: src.namespace || "", name: key.split("/").pop(), kind: src.workload_kind || "" });
      w = model.workloads.length - 1;
    }
    let d = model.destinations.findIndex((x) => x.name === u.destination);
    if (d < 0) {
      model.destinations.push({ name: u.destination, domain: u.domain || "", ips: [], ports: [], evidence: [], count: 0 });
      d = model.destinations.length - 1;
    }
    const dest = model.destinations[d];
    const ports = (u.ports || []).map((p) => (p.port === undefined ? "" : p.port) + "/" + p.protocol);
    let e = model.edges.find((x) => x.w === w && x.d === d);
    if (!e) {
      e = { w, d, count: 0, ports: [], status: null };
      model.edges.push(e);
    }
    dest.count += u.count - e.count;
    e.count = u.count;
    e.ports = ports;
    dest.ips = [...new Set([...(dest.ips || []), ...(u.ips || [])])].sort();
    dest.ports = [...new Set([...(dest.ports || []), ...ports])].sort();
    dest.evidence = [...new Set([...(dest.evidence || []), ...(u.evidence || [])])].sort();
    if (!dest.first_seen || u.first_seen < dest.first_seen) dest.first_seen = u.first_seen;
    if (!dest.last_seen || u.last_seen > dest.last_seen) dest.last_seen = u.last_seen;
  }

  function load() {
    return fetch("api/inventory").then((r) => r.json()).then((m) => {
      model = m;
      render();
    });
  }

  function live() {
    load().then(() => {
      let pending = false;
      const later = () => {
        if (!pending) {
          pending = true;
          setTimeout(() => { pending = false; render(); }, 250);
        }
      };
      const source = new EventSource("api/updates");
      source.onmessage = (ev) => { apply(JSON.parse(ev.data)); later(); };
      // Too far behind the updates: the inventory as it now stands.
      source.addEventListener("reload", () => load().catch((e) => fail(String(e))));
    }).catch((e) => fail(String(e)));
  }

  $("filter").addEventListener("input", () => render());
  $("clear").addEventListener("click", () => { $("filter").value = ""; picked = null; render(); });
  window.addEventListener("resize", () => render());
  render();
  // For benches/report.sh: when the first drawing was done.
  performance.mark("egress-scout:drawn");
  if (model.live) live();
})();
