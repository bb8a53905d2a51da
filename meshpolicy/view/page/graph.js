// meshpolicy access graph page: lays out, filters and explains the picture embedded in #data.
// No library, no network: the page's Content-Security-Policy forbids every request.
(function () {
  "use strict";
  var t0 = performance.now();
  var data = JSON.parse(document.getElementById("data").textContent);
  var SVG = "http://www.w3.org/2000/svg";
  var LINE_H = 14, PAD = 7, COL_GAP = data.edges.length < 160 ? 260 : 110, ROW_GAP = 12, GPAD = 14, GHEAD = 26, GGAP = 36;
  var LABELS_UNDER = 160;  // edge labels are drawn when fewer edges than this are shown
  var OUTSIDE = "";        // the pseudo-namespace of *, any and networks

  var byId = new Map();
  data.nodes.forEach(function (n) { byId.set(n.id, n); });
  var edgeById = new Map();
  data.edges.forEach(function (e) { edgeById.set(e.id, e); });
  var state = { hidden: new Set(), focus: "", search: "", selected: null };

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, parent, ns) {
    var node = ns === false ? document.createElement(tag) : document.createElementNS(SVG, tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(node);
    return node;
  }
  function h(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  // ---- ranks: callers to the left of what they call (longest path, cycles cut) -------------
  var rank = new Map();
  (function () {
    var incoming = new Map(), out = new Map();
    data.nodes.forEach(function (n) { incoming.set(n.id, 0); out.set(n.id, []); });
    data.edges.forEach(function (e) {
      if (e.from === e.to) return;
      incoming.set(e.to, incoming.get(e.to) + 1); out.get(e.from).push(e.to);
    });
    var queue = data.nodes.filter(function (n) { return incoming.get(n.id) === 0; }).map(function (n) { return n.id; });
    queue.forEach(function (id) { rank.set(id, 0); });
    var left = new Map(incoming);
    for (var i = 0; i < queue.length; i++) {
      var id = queue[i];
      out.get(id).forEach(function (next) {
        rank.set(next, Math.max(rank.get(next) || 0, rank.get(id) + 1));
        left.set(next, left.get(next) - 1);
        if (left.get(next) === 0) queue.push(next);
      });
    }
    data.nodes.forEach(function (n) { if (!rank.has(n.id)) rank.set(n.id, 1); });  // in a cycle
  })();

  // ---- the picture's elements, built once ---------------------------------------------------
  var svg = $("graph"), viewport = $("viewport");
  var nodeEls = new Map(), edgeEls = new Map(), groupEls = new Map();
  var nodeHeight = new Map();
  var groupsLayer = $("groups"), edgesLayer = $("edges"), nodesLayer = $("nodes");
  var namespaces = [{ name: OUTSIDE, title: "callers outside any namespace", external: false, declared: true }]
    .concat(data.namespaces);
  namespaces.forEach(function (ns) {
    var g = el("g", { "class": "group" + (ns.external ? " external" : "") + (!ns.declared ? " undeclared" : "")
      + (ns.name === OUTSIDE ? " outside" : ""), "data-namespace": ns.name }, groupsLayer);
    el("rect", {}, g);
    el("text", {}, g).textContent = ns.title;
    groupEls.set(ns.name, g);
  });
  var frag = document.createDocumentFragment();
  data.nodes.forEach(function (n) {
    var g = el("g", { "class": "node kind-" + n.kind + (n.permissive ? " permissive" : ""), "data-id": n.id }, frag);
    var height = PAD * 2 + n.lines.length * LINE_H;
    nodeHeight.set(n.id, height);
    el("rect", { width: 10, height: height }, g);
    var text = el("text", { x: 8, y: PAD + 11 }, g);
    n.lines.forEach(function (line, i) {
      var span = el("tspan", { x: 8, dy: i ? LINE_H : 0 }, text);
      if (i === 0) span.setAttribute("class", "first");
      span.textContent = line;
    });
    el("title", {}, g).textContent = n.id + " (" + n.kind_text + ")";
    g.addEventListener("click", function (ev) { ev.stopPropagation(); showNode(n.id); });
    nodeEls.set(n.id, g);
  });
  nodesLayer.appendChild(frag);
  frag = document.createDocumentFragment();
  data.edges.forEach(function (e) {
    var cls = "edge" + (e.plaintext ? " plain" : "") + (e.change ? " change-" + e.change : "");
    var g = el("g", { "class": cls, "data-id": e.id }, frag);
    el("path", { "class": "hit" }, g);
    el("path", { "class": "line" }, g);
    var label = el("text", { "class": "label", "text-anchor": "middle" }, g);
    e.label.forEach(function (line, i) {
      var span = el("tspan", { dy: i ? 12 : 0 }, label);
      span.textContent = line;
    });
    el("title", {}, g).textContent = e.from + " \u2192 " + e.to + "\n" + e.label.join("\n");
    g.addEventListener("click", function (ev) { ev.stopPropagation(); showEdge(e.id); });
    edgeEls.set(e.id, g);
  });
  edgesLayer.appendChild(frag);

  // ---- filters -------------------------------------------------------------------------------
  function covers(caller, svc) {  // whether node `caller` stands for calls that service `svc` makes
    if (caller.id === svc.id || caller.kind === "mesh" || caller.kind === "any") return true;
    if (caller.kind === "namespace") return caller.namespace === svc.namespace;
    if (caller.kind === "identity") return caller.namespace === svc.namespace && caller.account === svc.account;
    return false;
  }
  function visible() {
    var focus = state.focus ? byId.get(state.focus) : null;
    var edges = data.edges.filter(function (e) {
      var a = byId.get(e.from), b = byId.get(e.to);
      if (state.hidden.has(a.namespace) || state.hidden.has(b.namespace)) return false;
      return !focus || e.to === focus.id || covers(a, focus);
    });
    var ids = new Set();
    edges.forEach(function (e) { ids.add(e.from); ids.add(e.to); });
    if (focus) ids.add(focus.id);
    else data.nodes.forEach(function (n) {
      if ((n.kind === "service" || n.kind === "external") && !state.hidden.has(n.namespace)) ids.add(n.id);
    });
    return { nodes: data.nodes.filter(function (n) { return ids.has(n.id); }), edges: edges };
  }

  // ---- layout: one box per namespace, columns by rank inside; callers-only boxes on the left ---
  var nodeWidth = new Map();
  data.nodes.forEach(function (n) {
    var longest = n.lines.reduce(function (m, line) { return Math.max(m, line.length); }, 0);
    nodeWidth.set(n.id, Math.min(320, Math.max(140, Math.ceil(longest * 6.4) + 18)));
  });
  function box(ns, members) {
    var ranks = Array.from(new Set(members.map(function (n) { return rank.get(n.id); }))).sort(function (a, b) { return a - b; });
    var columns = ranks.map(function () { return []; });
    members.forEach(function (n) { columns[ranks.indexOf(rank.get(n.id))].push(n); });
    // a column taller than about twelve nodes is split, so that big namespaces stay compact
    var split = [], per = Math.max(12, Math.ceil(Math.sqrt(members.length * 2)));
    columns.forEach(function (col) { for (var i = 0; i < col.length; i += per) split.push(col.slice(i, i + per)); });
    var pos = new Map(), x = GPAD, height = 0;
    split.forEach(function (col) {
      var y = GHEAD, w = 0;
      col.forEach(function (n) {
        pos.set(n.id, { x: x, y: y });
        y += nodeHeight.get(n.id) + ROW_GAP;
        w = Math.max(w, nodeWidth.get(n.id));
      });
      height = Math.max(height, y);
      x += w + COL_GAP;
    });
    var title = ns.title.length * 6.6 + 2 * GPAD;
    return { ns: ns.name, pos: pos, w: Math.max(x - COL_GAP + GPAD, title), h: height + GPAD - ROW_GAP };
  }
  function layout(nodes) {
    var groups = new Map();
    nodes.forEach(function (n) {
      if (!groups.has(n.namespace)) groups.set(n.namespace, []);
      groups.get(n.namespace).push(n);
    });
    var callers = [], managed = [];
    namespaces.forEach(function (ns) {
      var members = groups.get(ns.name);
      if (!members) return;
      var only = ns.name === OUTSIDE || ns.external || !ns.declared;
      (only ? callers : managed).push(box(ns, members));
    });
    var out = new Map(), frames = [];
    function place(b, x, y) {
      frames.push({ ns: b.ns, x: x, y: y, w: b.w, h: b.h });
      b.pos.forEach(function (p, id) { out.set(id, { x: x + p.x, y: y + p.y, w: nodeWidth.get(id), h: nodeHeight.get(id) }); });
    }
    var left = 0, y = 0;
    callers.forEach(function (b) { place(b, 0, y); y += b.h + GGAP; left = Math.max(left, b.w); });
    var x0 = left ? left + COL_GAP * 1.5 : 0;
    var total = managed.reduce(function (s, b) { return s + b.w * b.h; }, 0);
    var widest = managed.reduce(function (m, b) { return Math.max(m, b.w); }, 0);
    var rowWidth = Math.max(widest, Math.sqrt(total) * 1.6), x = x0, rowH = 0;
    y = 0;
    managed.forEach(function (b) {
      if (x > x0 && x + b.w > x0 + rowWidth) { x = x0; y += rowH + GGAP; rowH = 0; }
      place(b, x, y);
      x += b.w + GGAP; rowH = Math.max(rowH, b.h);
    });
    return { at: out, frames: frames };
  }

  function curve(a, b) {
    var x1 = a.x + a.w, y1 = a.y + a.h / 2, x2 = b.x, y2 = b.y + b.h / 2;
    if (a === b) {
      return "M" + x1 + "," + (y1 - 6) + " C" + (x1 + 50) + "," + (y1 - 40) + " " + (x1 + 50) + "," + (y1 + 40) + " " + x1 + "," + (y1 + 6);
    }
    if (x2 < x1 + 20) {  // the target is not to the right: leave right, come in from the left
      return "M" + x1 + "," + y1 + " C" + (x1 + 80) + "," + y1 + " " + (x2 - 80) + "," + y2 + " " + x2 + "," + y2;
    }
    var dx = Math.max(40, (x2 - x1) / 2);
    return "M" + x1 + "," + y1 + " C" + (x1 + dx) + "," + y1 + " " + (x2 - dx) + "," + y2 + " " + x2 + "," + y2;
  }

  var shown = { nodes: [], edges: [] }, bounds = { x: 0, y: 0, w: 1, h: 1 };
  function render() {
    var start = performance.now();
    shown = visible();
    var placed = layout(shown.nodes);
    nodeEls.forEach(function (g, id) {
      var p = placed.at.get(id);
      if (!p) { g.classList.add("hidden"); return; }
      g.classList.remove("hidden");
      g.setAttribute("transform", "translate(" + p.x + "," + p.y + ")");
      g.firstChild.setAttribute("width", p.w);
    });
    var framed = new Set();
    placed.frames.forEach(function (f) {
      var g = groupEls.get(f.ns);
      framed.add(f.ns);
      g.classList.remove("hidden");
      var rect = g.firstChild;
      rect.setAttribute("x", f.x); rect.setAttribute("y", f.y); rect.setAttribute("width", f.w); rect.setAttribute("height", f.h);
      g.lastChild.setAttribute("x", f.x + 10); g.lastChild.setAttribute("y", f.y + 17);
    });
    groupEls.forEach(function (g, ns) { if (!framed.has(ns)) g.classList.add("hidden"); });
    var labels = shown.edges.length < LABELS_UNDER;
    var shownEdges = new Set(shown.edges.map(function (e) { return e.id; }));
    edgeEls.forEach(function (g, id) {
      if (!shownEdges.has(id)) { g.classList.add("hidden"); return; }
      var e = edgeById.get(id), a = placed.at.get(e.from), b = placed.at.get(e.to);
      g.classList.remove("hidden");
      var d = curve(a, b);
      g.childNodes[0].setAttribute("d", d);
      g.childNodes[1].setAttribute("d", d);
      var label = g.childNodes[2];
      label.classList.toggle("hidden", !labels);
      if (labels) {
        // at two thirds of the curve: edges that leave one node part there, towards their targets
        var line = g.childNodes[1], at = line.getPointAtLength(line.getTotalLength() * 0.62);
        var mx = at.x, my = at.y - 4 - 12 * (e.label.length - 1);
        if (a === b) { mx = a.x + a.w + 46; my = a.y + a.h / 2; }
        label.setAttribute("x", mx); label.setAttribute("y", my);
        Array.prototype.forEach.call(label.childNodes, function (span) { span.setAttribute("x", mx); });
      }
    });
    bounds = placed.frames.reduce(function (acc, f) {
      return { x: Math.min(acc.x, f.x), y: Math.min(acc.y, f.y), x2: Math.max(acc.x2, f.x + f.w), y2: Math.max(acc.y2, f.y + f.h) };
    }, { x: 0, y: 0, x2: 1, y2: 1 });
    bounds = { x: bounds.x, y: bounds.y, w: bounds.x2 - bounds.x, h: bounds.y2 - bounds.y };
    $("empty").hidden = shown.nodes.length > 0;
    var services = shown.nodes.filter(function (n) { return n.kind === "service"; }).length;
    var plain = shown.edges.filter(function (e) { return e.plaintext; }).length;
    if (data.change) {
      var kinds = ["added", "removed", "widened", "narrowed", "changed"].filter(function (k) { return data.change.counts[k]; });
      $("summary").textContent = (kinds.length ? kinds.map(function (k) { return data.change.counts[k] + " " + k; }).join(" \u00b7 ")
        : "no edge changed") + " \u00b7 grey edges are unchanged";
    } else $("summary").textContent = services + " services \u00b7 " + shown.edges.length + " edges"
      + (plain ? " \u00b7 " + plain + " allow plaintext" : "") + " \u00b7 trust domain " + data.trust_domain
      + " \u00b7 mesh mTLS " + data.mtls + (data.target ? " \u00b7 resources of " + data.target : "");
    applySearch();
    fit();
    api.lastRenderMs = performance.now() - start;
    api.shown = { nodes: shown.nodes.length, edges: shown.edges.length };
  }

  // ---- pan and zoom -------------------------------------------------------------------------
  var view = { x: 0, y: 0, w: 1, h: 1 };
  function setView(v) { view = v; svg.setAttribute("viewBox", v.x + " " + v.y + " " + v.w + " " + v.h); }
  function fit() {
    var box = svg.getBoundingClientRect(), m = 20;
    var w = bounds.w + 2 * m, hgt = bounds.h + 2 * m;
    var scale = Math.max(w / Math.max(box.width, 1), hgt / Math.max(box.height, 1));
    var vw = Math.max(box.width, 1) * scale, vh = Math.max(box.height, 1) * scale;
    setView({ x: bounds.x - m - (vw - w) / 2, y: bounds.y - m - (vh - hgt) / 2, w: vw, h: vh });
  }
  function zoom(factor, cx, cy) {
    if (cx === undefined) { cx = view.x + view.w / 2; cy = view.y + view.h / 2; }
    setView({ x: cx - (cx - view.x) * factor, y: cy - (cy - view.y) * factor, w: view.w * factor, h: view.h * factor });
  }
  svg.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    var box = svg.getBoundingClientRect();
    zoom(ev.deltaY > 0 ? 1.15 : 1 / 1.15, view.x + (ev.clientX - box.left) / box.width * view.w,
      view.y + (ev.clientY - box.top) / box.height * view.h);
  }, { passive: false });
  var drag = null;
  svg.addEventListener("mousedown", function (ev) { drag = { x: ev.clientX, y: ev.clientY, view: view }; svg.classList.add("panning"); });
  window.addEventListener("mousemove", function (ev) {
    if (!drag) return;
    var box = svg.getBoundingClientRect(), k = view.w / box.width;
    setView({ x: drag.view.x - (ev.clientX - drag.x) * k, y: drag.view.y - (ev.clientY - drag.y) * k, w: view.w, h: view.h });
  });
  window.addEventListener("mouseup", function () { drag = null; svg.classList.remove("panning"); });
  window.addEventListener("resize", fit);
  $("fit").addEventListener("click", fit);
  $("zoom-in").addEventListener("click", function () { zoom(1 / 1.3); });
  $("zoom-out").addEventListener("click", function () { zoom(1.3); });

  // ---- search -------------------------------------------------------------------------------
  function applySearch() {
    var q = state.search.trim().toLowerCase(), count = 0, first = null;
    svg.classList.toggle("searching", q !== "");
    shown.nodes.forEach(function (n) {
      var hit = q !== "" && (n.id.toLowerCase().indexOf(q) >= 0 || n.lines.join(" ").toLowerCase().indexOf(q) >= 0);
      nodeEls.get(n.id).classList.toggle("match", hit);
      if (hit) { count++; if (!first) first = n.id; }
    });
    nodeEls.forEach(function (g, id) { if (g.classList.contains("hidden")) g.classList.remove("match"); });
    $("search-count").textContent = q ? count + " match" + (count === 1 ? "" : "es") + (count ? " (Enter: show the first)" : "") : "";
    return first;
  }
  $("search").addEventListener("input", function (ev) { state.search = ev.target.value; applySearch(); });
  $("search").addEventListener("keydown", function (ev) {
    if (ev.key !== "Enter") return;
    var first = applySearch();
    if (!first) return;
    var box = nodeEls.get(first).getBBox(), t = nodeEls.get(first).transform.baseVal.consolidate().matrix;
    setView({ x: t.e + box.width / 2 - 400, y: t.f + box.height / 2 - 250, w: 800, h: 500 });
    showNode(first);
  });

  // ---- namespace and service filters ----------------------------------------------------------
  var counts = new Map();
  data.nodes.forEach(function (n) { if (n.kind === "service" || n.kind === "external") counts.set(n.namespace, (counts.get(n.namespace) || 0) + 1); });
  namespaces.forEach(function (ns) {
    var label = h("label");
    var box = h("input"); box.type = "checkbox"; box.checked = true; box.setAttribute("data-namespace", ns.name);
    box.addEventListener("change", function () {
      if (box.checked) state.hidden.delete(ns.name); else state.hidden.add(ns.name);
      render();
    });
    label.appendChild(box);
    label.appendChild(h("span", ns.name === OUTSIDE ? "(*, any, networks)" : ns.name));
    label.appendChild(h("span", counts.get(ns.name) ? String(counts.get(ns.name)) : "", "count"));
    $("namespaces").appendChild(label);
  });
  function setAll(on) {
    state.hidden = on ? new Set() : new Set(namespaces.map(function (ns) { return ns.name; }));
    Array.prototype.forEach.call(document.querySelectorAll("#namespaces input"), function (b) { b.checked = on; });
    render();
  }
  $("ns-all").addEventListener("click", function () { setAll(true); });
  $("ns-none").addEventListener("click", function () { setAll(false); });
  data.nodes.forEach(function (n) {
    if (n.kind !== "service" && n.kind !== "external") return;
    var option = h("option", n.id); option.value = n.id;
    $("focus").appendChild(option);
  });
  $("focus").addEventListener("change", function (ev) { state.focus = ev.target.value; render(); });

  if (data.change && data.change.notes.length) {
    var notes = h("div", null, "notes");
    notes.appendChild(h("label", "Notes"));
    data.change.notes.forEach(function (n) { notes.appendChild(h("div", n, "hint")); });
    $("filters").appendChild(notes);
  }

  // ---- legend -------------------------------------------------------------------------------
  (function () {
    var items = [["node kind-service", "service (mTLS strict)"], ["node kind-service permissive", "takes plaintext on some port"],
      ["node kind-external", "external service, or an account no service declares"], ["node kind-namespace", "NS/*, *, network"],
      ["node kind-any", "any client"]];
    var edges = data.change
      ? [["added", "edge added"], ["removed", "edge removed"], ["widened", "allows more"], ["narrowed", "allows less"], ["changed", "allows more and less"], ["same", "unchanged"]]
      : [["", "allowed calls (click for the rules)"], ["plain", "plaintext callers allowed"]];
    items.forEach(function (it) {
      var row = h("div"), s = el("svg", { width: 26, height: 16 }, row);
      el("rect", { x: 1, y: 1, width: 24, height: 14 }, el("g", { "class": it[0] }, s));
      row.appendChild(h("span", it[1]));
      $("legend").appendChild(row);
    });
    edges.forEach(function (it) {
      var row = h("div"), s = el("svg", { width: 26, height: 16 }, row);
      var cls = data.change ? "edge change-" + it[0] : "edge " + it[0];
      el("path", { "class": "line", d: "M1,8 L21,8" }, el("g", { "class": cls }, s));
      row.appendChild(h("span", it[1]));
      $("legend").appendChild(row);
    });
  })();

  // ---- the side panel ------------------------------------------------------------------------
  function ruleLine(index) {
    var r = data.rules[index], code = h("code", null, "rule");
    code.appendChild(h("span", r[0] + ":" + r[1], "where"));
    code.appendChild(document.createTextNode("  " + r[2]));
    return code;
  }
  function select(kind, id) {
    document.querySelectorAll(".selected").forEach(function (x) { x.classList.remove("selected"); });
    var target = kind === "edge" ? edgeEls.get(id) : nodeEls.get(id);
    if (target) target.classList.add("selected");
    state.selected = id;
  }
  function openPanel(title) {
    var body = $("panel-body");
    body.textContent = "";
    body.appendChild(h("h2", title));
    $("panel").hidden = false;
    return body;
  }
  function grantList(body, grants, heading) {
    body.appendChild(h("h3", heading));
    if (!grants.length) { body.appendChild(h("div", "nothing", "hint")); return; }
    grants.forEach(function (g) {
      var box = h("div", null, "grant" + (g.plaintext ? " plain" : ""));
      box.appendChild(ruleLine(g.rule));
      var what = h("div");
      what.appendChild(h("span", g.summary));
      if (g.plaintext) { what.appendChild(document.createTextNode(" ")); what.appendChild(h("span", "plaintext allowed", "badge red")); }
      box.appendChild(what);
      if (g.except.length) {
        box.appendChild(h("div", "deny rules that take some of it back:", "hint"));
        g.except.forEach(function (i) { box.appendChild(ruleLine(i)); });
      }
      if (g.resources.length) {
        box.appendChild(h("div", data.target + " resources:", "hint"));
        var ul = h("ul");
        g.resources.forEach(function (r) { ul.appendChild(h("li", r[0] + " " + r[1] + "/" + r[2])); });
        box.appendChild(ul);
      }
      body.appendChild(box);
    });
  }
  function showEdge(id) {
    var e = edgeById.get(id);
    select("edge", id);
    var body = openPanel(e.from + " \u2192 " + e.to);
    var kinds = h("div");
    if (e.change) kinds.appendChild(h("span", e.change, "badge " + e.change));
    kinds.appendChild(h("span", byId.get(e.from).kind_text, "badge"));
    if (e.plaintext) kinds.appendChild(h("span", "plaintext callers allowed", "badge red"));
    body.appendChild(kinds);
    if (e.change) {
      grantList(body, e.before || [], "Before");
      grantList(body, e.after || [], "After");
    } else {
      grantList(body, e.grants, "Allowed by");
    }
    body.appendChild(h("h3", "never rules on these callers"));
    if (!e.invariants.length) body.appendChild(h("div", "none", "hint"));
    e.invariants.forEach(function (i) { body.appendChild(ruleLine(i)); });
  }
  function showNode(id) {
    var n = byId.get(id);
    select("node", id);
    var body = openPanel(id);
    body.appendChild(h("div", n.kind_text, "badge"));
    if (n.where) body.appendChild(h("div", "declared at " + n.where, "hint"));
    if (n.account) body.appendChild(h("div", "service account " + n.namespace + "/" + n.account));
    if (n.ports.length) {
      body.appendChild(h("h3", "Ports"));
      var ul = h("ul");
      n.ports.forEach(function (p) { ul.appendChild(h("li", ":" + p[0] + " " + p[1] + (p[2] ? " \u00b7 mTLS " + p[2] : ""))); });
      body.appendChild(ul);
    }
    [["Called by", function (e) { return e.to === id; }, "from"], ["Calls", function (e) { return e.from === id; }, "to"]].forEach(function (part) {
      var list = data.edges.filter(part[1]);
      if (!list.length) return;
      body.appendChild(h("h3", part[0] + " (" + list.length + ")"));
      var ul = h("ul");
      list.forEach(function (e) {
        var li = h("li"), a = h("a", e[part[2]] + ": " + e.label.join("; "));
        a.href = "#"; a.addEventListener("click", function (ev) { ev.preventDefault(); showEdge(e.id); });
        li.appendChild(a); ul.appendChild(li);
      });
      body.appendChild(ul);
    });
  }
  $("close").addEventListener("click", function () { $("panel").hidden = true; select(null, null); });
  svg.addEventListener("click", function (ev) { if (ev.target === svg) { $("panel").hidden = true; select(null, null); } });

  var api = window.meshpolicyGraph = { ready: false, render: render, state: state, showEdge: showEdge, showNode: showNode };
  render();
  api.loadMs = performance.now() - t0;
  api.ready = true;
  document.body.setAttribute("data-ready", "true");
})();
