/* The explorable: a split's trained same/different model, run in the reader's browser (no kernel, no network).
 *
 * The page holds <div id="oscbind-explorable" data-data="../_static/explorable-data/" data-splits="95,50,15">.
 * This script loads icons.js and m<M>.js from data-data (written by oscbind_tools.explorable.export; each
 * pushes one JSON object onto window.oscbindExplorableData) and computes, in float64 from the float32
 * weights, exactly the package's forward pass (oscbind_lite.model.SameDifferent):
 *
 *   image --CNN (conv3x3, max-pool 2, BatchNorm in eval form, ReLU; global mean; linear)--> z in R^D
 *   c_{i,d} = W_d z_i[d] + b_d
 *   x <- normalize(x + gamma Proj_x(c + M x)), T times, M = [[Omega + J_IN, J_OUT], [J_OUT, Omega + J_IN]]
 *   rho_d = ||x_{1,d}(T) + x_{2,d}(T)||, readout sqrt(4 - rho^2), MLP -> logit of "same"
 *
 * window.oscbindExplorable.result() returns the last run as plain arrays (the browser test reads it).
 */
(function () {
  "use strict";
  var root = document.getElementById("oscbind-explorable");
  var api = (window.oscbindExplorable = { ready: false, error: null });
  if (!root) return;
  var COLOURS = ["#1f77b4", "#d62728"]; // object A, object B (as the book's figures)
  var EPS = 1e-12;
  var base = root.getAttribute("data-data") || "";
  var splits = (root.getAttribute("data-splits") || "").split(",").filter(Boolean).map(Number);
  var statusLine = root.querySelector(".ox-status");

  function say(text, kind) {
    statusLine.textContent = text;
    statusLine.className = "ox-status" + (kind ? " ox-" + kind : "");
  }

  // ---------------------------------------------------------------- data files
  function loadScript(url) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = url;
      s.onload = resolve;
      s.onerror = function () { reject(new Error(url.split("/").pop() + " did not load")); };
      document.head.appendChild(s);
    });
  }
  function payload(kind, m) {
    var all = window.oscbindExplorableData || [];
    for (var i = 0; i < all.length; i++) if (all[i].kind === kind && (m === undefined || all[i].m === m)) return all[i];
    return null;
  }
  function bytes(b64) {
    var s = atob(b64), out = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  function tensor(t) { // little-endian float32 -> Float64Array (exact)
    var b = bytes(t.data), view = new DataView(b.buffer), n = b.length / 4, out = new Float64Array(n);
    for (var i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
    out.shape = t.shape;
    return out;
  }

  // ---------------------------------------------------------------- the model
  function Model(p) {
    var T = {}, k;
    for (k in p.tensors) T[k] = tensor(p.tensors[k]);
    this.cfg = p.config;
    this.D = p.config.D; this.N = p.config.N; this.m = p.m;
    this.blocks = [];
    for (k = 0; T["conv" + k]; k++) { // BatchNorm in eval form, as torch's CPU kernel: alpha = w / sqrt(var + eps)
      var mean = T["bn" + k + ".mean"], v = T["bn" + k + ".var"], w = T["bn" + k + ".weight"], b = T["bn" + k + ".bias"];
      var eps = p.bn_eps[k], C = v.length, alpha = new Float64Array(C), beta = new Float64Array(C);
      for (var c = 0; c < C; c++) { alpha[c] = (1 / Math.sqrt(v[c] + eps)) * w[c]; beta[c] = b[c] - mean[c] * alpha[c]; }
      this.blocks.push({ weight: T["conv" + k], out: T["conv" + k].shape[0], alpha: alpha, beta: beta });
    }
    this.T = T;
    this.start = tensor(p.start); // (2, D, N)
    this.train = {}; this.test = {};
    var self = this;
    p.train_icons.forEach(function (i) { self.train[i] = true; });
    p.test_icons.forEach(function (i) { self.test[i] = true; });
    this.accuracy = p.test_accuracy;
    this.render = p.render;
    this.cache = {};
  }

  function conv3x3(x, ci, h, w, weight, co) { // padding 1, no bias
    var out = new Float64Array(co * h * w);
    for (var o = 0; o < co; o++) {
      var ob = o * h * w;
      for (var c = 0; c < ci; c++) {
        var ib = c * h * w, wb = (o * ci + c) * 9;
        for (var ky = 0; ky < 3; ky++) for (var kx = 0; kx < 3; kx++) {
          var k = weight[wb + 3 * ky + kx], dy = ky - 1, dx = kx - 1;
          var y0 = Math.max(0, -dy), y1 = Math.min(h, h - dy), x0 = Math.max(0, -dx), x1 = Math.min(w, w - dx);
          for (var y = y0; y < y1; y++) {
            var orow = ob + y * w, irow = ib + (y + dy) * w + dx;
            for (var xx = x0; xx < x1; xx++) out[orow + xx] += k * x[irow + xx];
          }
        }
      }
    }
    return out;
  }
  function poolNormRelu(x, C, h, w, alpha, beta) { // max-pool 2 (floor), then BatchNorm, then ReLU
    var H = Math.floor(h / 2), W = Math.floor(w / 2), out = new Float64Array(C * H * W);
    for (var c = 0; c < C; c++) for (var y = 0; y < H; y++) for (var xx = 0; xx < W; xx++) {
      var i = c * h * w + 2 * y * w + 2 * xx;
      var v = Math.max(Math.max(x[i], x[i + 1]), Math.max(x[i + w], x[i + w + 1]));
      out[c * H * W + y * W + xx] = Math.max(0, v * alpha[c] + beta[c]);
    }
    return { x: out, h: H, w: W };
  }
  Model.prototype.encode = function (image, size) { // (size x size) ink -> z (D)
    var x = image, C = 1, h = size, w = size;
    for (var k = 0; k < this.blocks.length; k++) {
      var b = this.blocks[k], y = conv3x3(x, C, h, w, b.weight, b.out), r = poolNormRelu(y, b.out, h, w, b.alpha, b.beta);
      x = r.x; C = b.out; h = r.h; w = r.w;
    }
    var ow = this.T["out.weight"], ob = this.T["out.bias"], z = new Float64Array(this.D), hw = h * w;
    for (var d = 0; d < this.D; d++) {
      var s = ob[d];
      for (var c = 0; c < C; c++) {
        var mean = 0;
        for (var i = 0; i < hw; i++) mean += x[c * hw + i];
        s += ow[d * C + c] * (mean / hw);
      }
      z[d] = s;
    }
    return z;
  };
  Model.prototype.coupling = function (jout, omega) { // core.fused_coupling, with blocks left out by the switches
    var DN = this.D * this.N, K = 2 * DN, N = this.N, M = new Float64Array(K * K), Jin = this.T.J_in, Jout = this.T.J_out, Om = this.T.omega;
    for (var r = 0; r < DN; r++) for (var s = 0; s < DN; s++) {
      var own = Jin[r * DN + s], other = jout ? Jout[r * DN + s] : 0;
      if (omega && Math.floor(r / N) === Math.floor(s / N)) own += Om[Math.floor(r / N) * N * N + (r % N) * N + (s % N)];
      M[r * K + s] = own; M[(r + DN) * K + s + DN] = own; M[r * K + s + DN] = other; M[(r + DN) * K + s] = other;
    }
    return M;
  };
  Model.prototype.energy = function (x, c, jout) { // core.energy: -1/2 (x1'J_IN x1 + x2'J_IN x2 + x1'J_OUT x2 + x2'J_OUT x1) - c'x
    var DN = this.D * this.N, e = 0, Jin = this.T.J_in, Jout = this.T.J_out;
    for (var i = 0; i < 2; i++) for (var r = 0; r < DN; r++) {
      var within = 0, between = 0, xi = x[i * DN + r];
      for (var s = 0; s < DN; s++) {
        within += Jin[r * DN + s] * x[i * DN + s];
        if (jout) between += Jout[r * DN + s] * x[(1 - i) * DN + s];
      }
      e -= 0.5 * xi * (within + between) + c[i * DN + r] * xi;
    }
    return e;
  };
  Model.prototype.run = function (z, x0, opts) { // z: [zA, zB]; x0: (2 D N); returns states, energies, rho, verdict
    var D = this.D, N = this.N, DN = D * N, K = 2 * DN, W = this.T.W, b = this.T.b, c = new Float64Array(K);
    for (var i = 0; i < 2; i++) for (var d = 0; d < D; d++) for (var n = 0; n < N; n++)
      c[i * DN + d * N + n] = z[i][d] * W[d * N + n] + b[d * N + n];
    var M = this.coupling(opts.jout, opts.omega), x = Float64Array.from(x0), states = [x], energies = [this.energy(x, c, opts.jout)];
    var h = new Float64Array(K);
    for (var t = 0; t < opts.T; t++) {
      for (var r = 0; r < K; r++) {
        var acc = c[r], row = r * K;
        for (var q = 0; q < K; q++) acc += M[row + q] * x[q];
        h[r] = acc;
      }
      var next = new Float64Array(K);
      for (var o = 0; o < 2 * D; o++) {
        var s = 0, norm = 0, a;
        for (a = 0; a < N; a++) s += h[o * N + a] * x[o * N + a];
        for (a = 0; a < N; a++) { var y = x[o * N + a] + opts.gamma * (h[o * N + a] - s * x[o * N + a]); next[o * N + a] = y; norm += y * y; }
        norm = Math.max(Math.sqrt(norm), EPS);
        for (a = 0; a < N; a++) next[o * N + a] /= norm;
      }
      x = next; states.push(x); energies.push(this.energy(x, c, opts.jout));
    }
    var rho = states.map(function (st) { return coherence(st, D, N); });
    return { c: c, states: states, energies: energies, rho: rho, verdict: this.classify(rho[rho.length - 1]) };
  };
  function coherence(x, D, N) { // rho_d = ||x_{1,d} + x_{2,d}||
    var out = new Float64Array(D);
    for (var d = 0; d < D; d++) {
      var s2 = 0;
      for (var a = 0; a < N; a++) { var s = x[d * N + a] + x[D * N + d * N + a]; s2 += s * s; }
      out[d] = Math.sqrt(Math.max(s2, EPS * EPS));
    }
    return out;
  }
  Model.prototype.classify = function (rho) { // readout (chord or rho), Linear-ReLU-Linear, sigmoid
    var T = this.T, D = this.D, H = T["head0.bias"].length, r = new Float64Array(D), logit = T["head2.bias"][0];
    for (var d = 0; d < D; d++) r[d] = this.cfg.readout === "rho" ? rho[d] : Math.sqrt(Math.max(4 - rho[d] * rho[d], 1e-6));
    for (var j = 0; j < H; j++) {
      var a = T["head0.bias"][j];
      for (d = 0; d < D; d++) a += T["head0.weight"][j * D + d] * r[d];
      logit += T["head2.weight"][j] * Math.max(0, a);
    }
    return { readout: r, logit: logit, probability: 1 / (1 + Math.exp(-logit)) };
  };

  // ---------------------------------------------------------------- images
  function place(glyph, b, size, scale, sx, sy, glyphSize) { // data.Renderer.render for one sample: grid_sample, bilinear, zeros
    var half = glyphSize * scale, out = new Float64Array(size * size);
    for (var i = 0; i < size; i++) for (var j = 0; j < size; j++) {
      var gx = (((2 * j + 1) / size - 1) - sx) / half, gy = (((2 * i + 1) / size - 1) - sy) / half;
      var ix = ((gx + 1) * b - 1) / 2, iy = ((gy + 1) * b - 1) / 2, x0 = Math.floor(ix), y0 = Math.floor(iy), v = 0;
      for (var dy = 0; dy < 2; dy++) for (var dx = 0; dx < 2; dx++) {
        var px = x0 + dx, py = y0 + dy;
        if (px < 0 || py < 0 || px >= b || py >= b) continue;
        v += glyph[py * b + px] * (dx ? ix - x0 : 1 - (ix - x0)) * (dy ? iy - y0 : 1 - (iy - y0));
      }
      out[i * size + j] = v;
    }
    return out;
  }
  function fitDrawing(ink, side) { // like data._fit: crop to the ink, centre in a square, resize to side x side (bilinear)
    var r0 = side, r1 = -1, c0 = side, c1 = -1;
    for (var y = 0; y < side; y++) for (var x = 0; x < side; x++) if (ink[y * side + x] > 0.1) {
      r0 = Math.min(r0, y); r1 = Math.max(r1, y); c0 = Math.min(c0, x); c1 = Math.max(c1, x);
    }
    if (r1 < 0) return null; // blank
    var hgt = r1 - r0 + 1, wid = c1 - c0 + 1, sq = Math.max(hgt, wid), top = r0 - Math.floor((sq - hgt) / 2), left = c0 - Math.floor((sq - wid) / 2);
    var out = new Float64Array(side * side);
    for (var i = 0; i < side; i++) for (var j = 0; j < side; j++) { // sample the square at each output pixel's centre
      var sy = top + (i + 0.5) * sq / side - 0.5, sx = left + (j + 0.5) * sq / side - 0.5, y0 = Math.floor(sy), x0 = Math.floor(sx), v = 0;
      for (var dy = 0; dy < 2; dy++) for (var dx = 0; dx < 2; dx++) {
        var py = y0 + dy, px = x0 + dx;
        var inside = py >= top && px >= left && py < top + sq && px < left + sq && py >= r0 && py <= r1 && px >= c0 && px <= c1;
        if (inside) v += ink[py * side + px] * (dx ? sx - x0 : 1 - (sx - x0)) * (dy ? sy - y0 : 1 - (sy - y0));
      }
      out[i * side + j] = v;
    }
    return out;
  }
  function rng(seed) { // mulberry32 plus Box-Muller: a reproducible stream for starts and placements
    var a = seed >>> 0, spare = null;
    var uniform = function () {
      a = (a + 0x6d2b79f5) >>> 0;
      var t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    return { uniform: uniform, normal: function () {
      if (spare !== null) { var s = spare; spare = null; return s; }
      var u = Math.max(uniform(), 1e-300), v = uniform(), r = Math.sqrt(-2 * Math.log(u));
      spare = r * Math.sin(2 * Math.PI * v);
      return r * Math.cos(2 * Math.PI * v);
    } };
  }

  // ---------------------------------------------------------------- state and permalink
  var icons = null, models = {}, state = null, result = null, t = 0, timer = null;
  var active = 0; // the object (0 = A, 1 = B) that a click on the sheet or "use drawing" sets
  var drawn = [null, null]; // each object's drawing as 1024 bits (when it is drawn rather than picked)
  var pad = new Uint8Array(1024);
  function defaults() { // T and gamma: the model's own, filled in once it is loaded (apply)
    var m = Number(root.getAttribute("data-default-split")) || splits[0];
    return { m: m, a: 0, b: 1, T: null, gamma: null, jout: true, omega: true, start: "shared", seed: 0, place: 0 };
  }
  function bitsToText(bits) {
    var s = "";
    for (var i = 0; i < 128; i++) { var v = 0; for (var k = 0; k < 8; k++) v |= bits[8 * i + k] << k; s += String.fromCharCode(v); }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function textToBits(text) {
    var s = atob(text.replace(/-/g, "+").replace(/_/g, "/")), bits = new Uint8Array(1024);
    if (s.length !== 128) throw new Error("bad drawing");
    for (var i = 0; i < 128; i++) for (var k = 0; k < 8; k++) bits[8 * i + k] = (s.charCodeAt(i) >> k) & 1;
    return bits;
  }
  function toHash(s) {
    var obj = function (i) { return drawn[i] ? "d" + bitsToText(drawn[i]) : String(i ? s.b : s.a); };
    return "#m=" + s.m + "&a=" + obj(0) + "&b=" + obj(1) + "&T=" + s.T + "&gamma=" + s.gamma + "&jout=" + (s.jout ? 1 : 0) +
      "&omega=" + (s.omega ? 1 : 0) + "&start=" + s.start + "&seed=" + s.seed + "&place=" + s.place;
  }
  function ours(hash) { // a state link, not one of the page's own anchors (#what-runs-in-your-browser)
    return /(^#?|&)(m|a|b|T|gamma|jout|omega|start|seed|place)=/.test(hash);
  }
  function fromHash(hash) { // the link's state, each bad value replaced by its default (and said so)
    var s = defaults(), bad = [], K = icons.shape[0];
    drawn = [null, null];
    if (!ours(hash)) return { state: s, bad: bad };
    hash.replace(/^#/, "").split("&").forEach(function (part) {
      var kv = part.split("="), k = kv[0], v, n;
      if (!k) return;
      try { v = decodeURIComponent(kv[1] || ""); } catch (e) { bad.push(k); return; } // a malformed %-escape
      n = Number(v);
      var int = v !== "" && Number.isInteger(n);
      if (k === "m") { if (splits.indexOf(n) >= 0) s.m = n; else bad.push("m"); }
      else if (k === "a" || k === "b") {
        var i = k === "a" ? 0 : 1;
        if (v.charAt(0) === "d") { try { drawn[i] = textToBits(v.slice(1)); } catch (e) { bad.push(k); } }
        else if (int && n >= 0 && n < K) s[k] = n; else bad.push(k);
      }
      else if (k === "T") { if (int && n >= 1 && n <= 500) s.T = n; else bad.push("T"); }
      else if (k === "gamma") { if (v !== "" && n > 0 && n <= 4) s.gamma = n; else bad.push("gamma"); }
      else if (k === "jout" || k === "omega") { if (v === "0" || v === "1") s[k] = v === "1"; else bad.push(k); }
      else if (k === "start") { if (v === "shared" || v === "independent") s.start = v; else bad.push("start"); }
      else if (k === "seed" || k === "place") { if (int && n >= 0 && n < 4294967296) s[k] = n; else bad.push(k); }
    });
    return { state: s, bad: bad };
  }

  // ---------------------------------------------------------------- computing a run
  function glyphOf(i) { // the 32 x 32 glyph of object i: a bank icon, or the fitted drawing
    var b = icons.shape[1];
    if (drawn[i]) return { glyph: fitDrawing(drawn[i], 32), side: 32, key: "d" + bitsToText(drawn[i]) };
    var n = i ? state.b : state.a;
    return { glyph: icons.pixels.subarray(n * b * b, (n + 1) * b * b), side: b, key: "i" + n };
  }
  function placements() { // scale and offset of each object: centred at scale 1, or drawn as in training
    var r = state.place ? rng(state.place) : null, out = [], rd = models[state.m].render;
    for (var i = 0; i < 2; i++) {
      if (!r) { out.push([1, 0, 0]); continue; }
      var s = rd.scale_min + (rd.scale_max - rd.scale_min) * r.uniform(), room = Math.max(0, 1 - rd.glyph_size * s - 2 / rd.image_size);
      out.push([s, (2 * r.uniform() - 1) * room, (2 * r.uniform() - 1) * room]);
    }
    return out;
  }
  function startState(model) { // the exported start (seed 0) or a random one; shared: object A's row for both
    var D = model.D, N = model.N, DN = D * N, x = new Float64Array(2 * DN), i, o;
    if (state.seed === 0) x.set(model.start);
    else {
      var r = rng(state.seed);
      for (i = 0; i < 2 * DN; i++) x[i] = r.normal();
      for (o = 0; o < 2 * D; o++) {
        var nr = 0;
        for (i = 0; i < N; i++) nr += x[o * N + i] * x[o * N + i];
        nr = Math.max(Math.sqrt(nr), EPS);
        for (i = 0; i < N; i++) x[o * N + i] /= nr;
      }
    }
    if (state.start === "shared") x.set(x.subarray(0, DN), DN);
    return x;
  }
  function compute() {
    var t0 = performance.now(), model = models[state.m], size = model.render.image_size, where = placements();
    var images = [], z = [], notes = [];
    for (var i = 0; i < 2; i++) {
      var g = glyphOf(i);
      if (!g.glyph) { notes.push("object " + "AB"[i] + "'s drawing is blank, so it is shown as an empty image"); g.glyph = new Float64Array(g.side * g.side); }
      var img = place(g.glyph, g.side, size, where[i][0], where[i][1], where[i][2], model.render.glyph_size);
      var key = g.key + "@" + where[i].join(",");
      if (!model.cache[key]) model.cache[key] = model.encode(img, size);
      images.push(img); z.push(model.cache[key]);
    }
    var t1 = performance.now();
    var run = model.run(z, startState(model), { T: state.T, gamma: state.gamma, jout: state.jout, omega: state.omega });
    run.images = images; run.z = z; run.notes = notes; run.where = where;
    run.ms = { total: performance.now() - t0, dynamics: performance.now() - t1 };
    run.hash = toHash(state);
    return run;
  }
  api.result = function () { // the last run as plain arrays (for tests and the console)
    if (!result) return null;
    var arr = function (a) { return Array.prototype.slice.call(a); }, D = models[state.m].D, N = models[state.m].N;
    return { hash: result.hash, split: state.m, state: Object.assign({}, state), images: result.images.map(arr), z: result.z.map(arr), c: arr(result.c),
             states: result.states.map(arr), energies: arr(result.energies), rho: result.rho.map(arr),
             phases: result.states.map(function (x) { var p = []; for (var o = 0; o < 2 * D; o++) p.push(Math.atan2(x[o * N + 1], x[o * N])); return p; }),
             readout: arr(result.verdict.readout), logit: result.verdict.logit, probability: result.verdict.probability,
             placements: result.where.map(arr), ms: result.ms, notes: result.notes };
  };

  // ---------------------------------------------------------------- the page
  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === "text") e.textContent = attrs[k];
      else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), attrs[k]);
      else e.setAttribute(k, attrs[k]);
    }
    (kids || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }
  var ui = {};
  function sub(text) { return el("sub", { text: text }); }
  function phrase(parts) { // a string, or an array of strings and nodes (maths with subscripts, as the book writes it)
    return el("span", {}, [].concat(parts).map(function (p) { return typeof p === "string" ? document.createTextNode(p) : p; }));
  }
  function labelled(text, input, note) {
    return el("label", { class: "ox-field" }, [phrase(text), input, note ? el("small", { text: note }) : null]);
  }
  // A number field refuses a value out of its range: the field goes back to the last valid value, which the dynamics
  // keep running with, and one line beside it says what was refused and why.
  function checked(name, text, symbol, valid, rule) {
    ui.errors = ui.errors || {};
    ui.errors[name] = el("small", { class: "ox-error", role: "alert", id: "ox-" + name + "-error" });
    ui.inputs[name].setAttribute("aria-describedby", "ox-" + name + "-error");
    ui.inputs[name].addEventListener("change", function () {
      var typed = ui.inputs[name].value.trim(), v = valid(typed);
      if (v === null) {
        ui.inputs[name].value = state[name];
        ui.errors[name].textContent = (typed === "" ? "An empty " + symbol : symbol + " = " + typed) + " refused: it " + rule +
          "; back to " + state[name] + ".";
      } else {
        clearError(name);
        var change = {}; change[name] = v; set(change);
      }
    });
    return el("div", { class: "ox-checked" }, [labelled(text, ui.inputs[name]), ui.errors[name]]);
  }
  function clearError(name) {
    if (ui.errors && ui.errors[name]) ui.errors[name].textContent = "";
  }
  function canvas(w, h, label) {
    var c = el("canvas", { role: "img", "aria-label": label, class: "ox-canvas" });
    var r = window.devicePixelRatio || 1;
    c.width = Math.round(w * r); c.height = Math.round(h * r); c.style.width = w + "px";
    c.getContext("2d").scale(r, r);
    c.logical = [w, h];
    return c;
  }
  function paintImage(cv, img, size, colour) { // an ink image (1 = ink) on white, in the object's colour
    var ctx = cv.getContext("2d"), w = cv.logical[0], px = w / size;
    ctx.clearRect(0, 0, w, w);
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, w, w);
    for (var i = 0; i < size; i++) for (var j = 0; j < size; j++) {
      var v = Math.max(0, Math.min(1, img[i * size + j]));
      if (v > 0.02) { ctx.globalAlpha = v; ctx.fillStyle = colour; ctx.fillRect(j * px, i * px, px + 0.5, px + 0.5); }
    }
    ctx.globalAlpha = 1;
  }

  function build() {
    var K = icons.shape[0], side = icons.shape[1];
    ui.split = el("select", { id: "ox-split", onchange: function () { var next = Object.assign({}, state, { m: Number(ui.split.value) }); go(next); } },
      splits.map(function (m) { return el("option", { value: m, text: "m = " + m + " training icons" }); }));
    ui.splitNote = el("small", { class: "ox-note" });
    ui.slots = [0, 1].map(function (i) {
      var number = el("input", { type: "number", min: 0, max: K - 1, step: 1, id: "ox-icon-" + "ab"[i],
        onchange: function () { var n = Math.round(Number(number.value)); if (n >= 0 && n < K) { drawn[i] = null; set(i ? { b: n } : { a: n }); } } });
      var choose = el("input", { type: "radio", name: "ox-active", value: i, onchange: function () { active = i; refreshSlots(); } });
      var preview = canvas(64, 64, "the image of object " + "AB"[i] + " the model sees");
      return { number: number, choose: choose, preview: preview, caption: el("small", { class: "ox-caption" }),
               box: el("div", { class: "ox-slot ox-slot-" + "ab"[i] }, [
                 el("label", { class: "ox-choose" }, [choose, el("span", { text: " object " + "AB"[i] + " (clicks set it)" })]),
                 preview, labelled("icon number", number)]) };
    });
    ui.slots.forEach(function (s) { s.box.appendChild(s.caption); });
    ui.sheet = el("div", { class: "ox-sheet", role: "group", "aria-label": "the " + K + " icons; arrow keys move, Enter picks" });
    ui.cells = [];
    for (var n = 0; n < K; n++) (function (n) {
      var cv = canvas(26, 26, "");
      var btn = el("button", { type: "button", class: "ox-icon", tabindex: n === 0 ? 0 : -1, "data-icon": n,
        onclick: function () { pickIcon(n); }, onkeydown: sheetKeys }, [cv]);
      paintImage(cv, icons.pixels.subarray(n * side * side, (n + 1) * side * side), side, "#222");
      ui.cells.push(btn); ui.sheet.appendChild(btn);
    })(n);
    ui.pad = canvas(160, 160, "drawing pad, 32 by 32 pixels");
    ui.pad.tabIndex = 0;
    ui.pad.setAttribute("aria-label", "drawing pad, 32 by 32 pixels: draw with mouse or finger; with the keyboard, arrow keys move the cursor and Space paints");
    padEvents(ui.pad);
    ui.useDrawing = el("button", { type: "button", onclick: useDrawing });
    ui.inputs = {
      T: el("input", { type: "number", id: "ox-T", min: 1, max: 500, step: 1 }),
      gamma: el("input", { type: "number", id: "ox-gamma", min: 0.01, max: 4, step: 0.05 }),
      jout: el("input", { type: "checkbox", id: "ox-jout", onchange: function () { set({ jout: ui.inputs.jout.checked }); } }),
      omega: el("input", { type: "checkbox", id: "ox-omega", onchange: function () { set({ omega: ui.inputs.omega.checked }); } }),
      start: el("select", { id: "ox-start", onchange: function () { set({ start: ui.inputs.start.value }); } },
        [el("option", { value: "shared", text: "shared by both objects" }), el("option", { value: "independent", text: "independent" })]),
      place: el("input", { type: "checkbox", id: "ox-place", onchange: function () { set({ place: ui.inputs.place.checked ? 1 + Math.floor(Math.random() * 1e9) : 0 }); } })
    };
    ui.time = el("input", { type: "range", id: "ox-time", min: 0, step: 1, "aria-label": "time step t", oninput: function () { stop(); show(Number(ui.time.value)); } });
    ui.play = el("button", { type: "button", class: "ox-play", onclick: function () { if (timer) stop(); else play(); } });
    ui.timeText = el("output", { for: "ox-time" });
    ui.circle = canvas(260, 260, "phase circle");
    ui.bars = canvas(300, 150, "coherence bars");
    ui.energy = canvas(300, 150, "energy over time");
    ui.verdict = el("p", { class: "ox-verdict", "aria-live": "polite" });
    ui.timing = el("small", { class: "ox-note" });
    // The verdict sits beside the two objects it judges (the third box of their row), not below the dynamics.
    ui.verdictBox = el("div", { class: "ox-slot ox-verdict-box", role: "group", "aria-label": "the verdict on A and B" }, [
      el("strong", { text: "Verdict" }), ui.verdict,
      el("small", { class: "ox-caption", text: "The classifier's probability that A and B are the same icon, from the coherence at t = T." })]);
    var view = function (title, node, sentence) { return el("figure", { class: "ox-view" }, [node, el("figcaption", {}, [el("strong", { text: title + ". " }), phrase(sentence)])]); };
    var button = function (text, fn) { return el("button", { type: "button", onclick: fn, text: text }); };
    root.appendChild(el("div", { class: "ox-layout" }, [
      el("section", { class: "ox-panel", "aria-label": "choose the pair" }, [
        el("h3", { text: "1. Two objects" }),
        labelled("trained model", ui.split), ui.splitNote,
        el("div", { class: "ox-slots" }, ui.slots.map(function (s) { return s.box; }).concat([ui.verdictBox])),
        el("p", { class: "ox-note", text: "Click an icon to make it the selected object. Icons with an orange corner are held out: the model of this split never saw them in training." }),
        ui.sheet,
        el("details", { class: "ox-draw" }, [el("summary", { text: "or draw an icon" }),
          el("p", { class: "ox-note", text: "Draw on the 32 x 32 grid; it is cropped to its ink and centred, as the icons were." }),
          ui.pad, el("div", { class: "ox-row" }, [ui.useDrawing, button("Clear", function () { pad.fill(0); paintPad(); })])]),
        labelled("random scale and position, as in training", ui.inputs.place),
        button("New scale and position", function () { set({ place: 1 + Math.floor(Math.random() * 1e9) }); })
      ]),
      el("section", { class: "ox-panel", "aria-label": "the dynamics" }, [
        el("h3", { text: "2. The oscillators" }),
        el("div", { class: "ox-controls" }, [
          checked("T", "steps T", "T", function (text) { var v = Number(text); return text !== "" && Number.isInteger(v) && v >= 1 && v <= 500 ? v : null; },
                  "must be a whole number from 1 to 500"),
          checked("gamma", "step size \u03b3", "\u03b3", function (text) { var v = Number(text); return text !== "" && v > 0 && v <= 4 ? v : null; },
                  "must be above 0 and at most 4"),
          labelled(["coupling between objects J", sub("OUT")], ui.inputs.jout), labelled("natural frequencies \u03a9", ui.inputs.omega),
          labelled("start phases", ui.inputs.start)]),
        el("div", { class: "ox-row" }, [button("New random start", function () { set({ seed: 1 + Math.floor(Math.random() * 1e9) }); }),
          button("The page's fixed start", function () { set({ seed: 0 }); }),
          button("Reset everything", function () { drawn = [null, null]; active = 0; go(defaults()); })]),
        el("div", { class: "ox-row ox-time" }, [ui.play, ui.time, ui.timeText]),
        el("div", { class: "ox-views" }, [
          view("Phases", ui.circle, "Each feature d has one oscillator per object: blue dots for object A, red crosses for object B, a grey chord between the two of one feature. A short chord is a locked feature."),
          view("Coherence", ui.bars, ["\u03c1", sub("d"), " = \u2016x", sub("A,d"), " + x", sub("B,d"), "\u2016 of each feature at step t: 2 when its two oscillators are in phase, 0 when opposite; green bars are within 30\u00b0 (locked). The classifier reads only these, at t = T."]),
          view("Energy", ui.energy, "E at each step (drive plus within- and between-object coupling). The dot marks step t. With this model's asymmetric J and \u03a9 nothing forces it to fall.")]),
        ui.timing
      ])]));
  }
  function sheetKeys(ev) {
    var n = Number(ev.currentTarget.getAttribute("data-icon")), K = ui.cells.length, to = null;
    if (ev.key === "ArrowRight") to = n + 1; else if (ev.key === "ArrowLeft") to = n - 1;
    else if (ev.key === "ArrowDown") to = n + 10; else if (ev.key === "ArrowUp") to = n - 10;
    else if (ev.key === "Home") to = 0; else if (ev.key === "End") to = K - 1;
    if (to === null || to < 0 || to >= K) return;
    ev.preventDefault();
    ui.cells[n].tabIndex = -1; ui.cells[to].tabIndex = 0; ui.cells[to].focus();
  }
  function pickIcon(n) {
    drawn[active] = null;
    var change = active ? { b: n } : { a: n };
    if (active === 0) active = 1; // pick A, then B
    set(change);
  }
  function useDrawing() {
    var any = false;
    for (var i = 0; i < pad.length; i++) if (pad[i]) { any = true; break; }
    if (!any) { say("The drawing is blank: draw something on the grid first (the model would see an empty image).", "warn"); return; }
    drawn[active] = Uint8Array.from(pad);
    set({});
  }
  var cursor = [16, 16];
  function padEvents(cv) {
    var down = false;
    var paint = function (ev) {
      var r = cv.getBoundingClientRect(), x = Math.floor((ev.clientX - r.left) / r.width * 32), y = Math.floor((ev.clientY - r.top) / r.height * 32);
      for (var dy = 0; dy < 2; dy++) for (var dx = 0; dx < 2; dx++) {
        var px = x + dx, py = y + dy;
        if (px >= 0 && py >= 0 && px < 32 && py < 32) pad[py * 32 + px] = 1;
      }
      paintPad();
    };
    cv.addEventListener("pointerdown", function (ev) { down = true; cv.setPointerCapture(ev.pointerId); paint(ev); ev.preventDefault(); });
    cv.addEventListener("pointermove", function (ev) { if (down) paint(ev); });
    cv.addEventListener("pointerup", function () { down = false; });
    cv.addEventListener("pointercancel", function () { down = false; });
    cv.addEventListener("keydown", function (ev) {
      var moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
      if (moves[ev.key]) { cursor[0] = Math.max(0, Math.min(31, cursor[0] + moves[ev.key][0])); cursor[1] = Math.max(0, Math.min(31, cursor[1] + moves[ev.key][1])); }
      else if (ev.key === " " || ev.key === "Enter") pad[cursor[1] * 32 + cursor[0]] ^= 1;
      else return;
      ev.preventDefault(); paintPad(true);
    });
  }
  function paintPad(showCursor) {
    var ctx = ui.pad.getContext("2d"), w = ui.pad.logical[0], px = w / 32;
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, w, w);
    ctx.strokeStyle = "#eee"; ctx.lineWidth = 1;
    for (var k = 0; k <= 32; k += 4) { ctx.beginPath(); ctx.moveTo(k * px, 0); ctx.lineTo(k * px, w); ctx.moveTo(0, k * px); ctx.lineTo(w, k * px); ctx.stroke(); }
    ctx.fillStyle = "#222";
    for (var i = 0; i < 1024; i++) if (pad[i]) ctx.fillRect((i % 32) * px, Math.floor(i / 32) * px, px, px);
    if (showCursor) { ctx.strokeStyle = COLOURS[1]; ctx.strokeRect(cursor[0] * px + 0.5, cursor[1] * px + 0.5, px - 1, px - 1); }
  }

  function set(change) { for (var k in change) state[k] = change[k]; apply(); }
  function apply() { // recompute, redraw, and put the state in the address
    var model = models[state.m];
    if (state.T === null) state.T = model.cfg.T;
    if (state.gamma === null) state.gamma = model.cfg.gamma;
    try {
      result = compute();
    } catch (err) {
      say("The model could not run: " + err.message, "error");
      api.error = String(err);
      return;
    }
    if (history.replaceState) history.replaceState(null, "", result.hash); else location.hash = result.hash;
    api.lastHash = result.hash;
    say(result.notes.length ? result.notes.join("; ") + "." : "Ready: change anything and the model runs again.", result.notes.length ? "warn" : "");
    refresh();
    stop();
    show(state.T);
    ui.timing.textContent = "Computed in your browser in " + result.ms.total.toFixed(1) + " ms (the dynamics alone " + result.ms.dynamics.toFixed(1) + " ms).";
    api.ready = true;
    root.setAttribute("data-ready", result.hash);
  }
  function refresh() { // the controls show the state
    var model = models[state.m];
    ui.split.value = String(state.m);
    ui.splitNote.textContent = "Model trained on " + state.m + " icons" + (model.accuracy != null ?
      "; " + (100 * model.accuracy).toFixed(1) + " % correct on pairs of its " + (icons.shape[0] - state.m) + " held-out icons." : ".");
    ui.inputs.T.value = state.T; ui.inputs.gamma.value = state.gamma; ui.inputs.jout.checked = state.jout;
    clearError("T"); clearError("gamma");
    ui.inputs.omega.checked = state.omega; ui.inputs.start.value = state.start; ui.inputs.place.checked = state.place > 0;
    ui.time.max = state.T;
    ui.cells.forEach(function (btn, n) {
      var held = !!model.test[n], a = !drawn[0] && state.a === n, b = !drawn[1] && state.b === n;
      btn.classList.toggle("ox-held", held);
      btn.classList.toggle("ox-a", a); btn.classList.toggle("ox-b", b);
      btn.setAttribute("aria-label", "icon " + n + (icons.names[n] ? " (" + icons.names[n] + ")" : "") + ", " + (held ? "held out" : "training") +
        (a ? ", object A" : "") + (b ? ", object B" : ""));
      btn.setAttribute("aria-pressed", a || b ? "true" : "false");
    });
    refreshSlots();
  }
  function refreshSlots() {
    var model = models[state.m];
    ui.slots.forEach(function (s, i) {
      var n = i ? state.b : state.a;
      s.choose.checked = active === i;
      s.box.classList.toggle("ox-active", active === i);
      s.number.value = drawn[i] ? "" : n;
      s.caption.textContent = drawn[i] ? "your drawing" : "icon " + n + ", " + (model.test[n] ? "held out" : "a training icon");
      if (result) paintImage(s.preview, result.images[i], model.render.image_size, COLOURS[i]);
    });
    ui.useDrawing.textContent = "Use the drawing as object " + "AB"[active];
  }
  function play() {
    if (t >= state.T) t = 0;
    ui.play.textContent = "Pause"; ui.play.setAttribute("aria-label", "pause");
    timer = setInterval(function () { show(Math.min(t + 1, state.T)); if (t >= state.T) stop(); }, Math.max(40, 2400 / state.T));
  }
  function stop() {
    if (timer) clearInterval(timer);
    timer = null;
    ui.play.textContent = "Play"; ui.play.setAttribute("aria-label", "play the steps from t = 0");
  }
  function show(step) { // draw the three views at step t (the verdict is always at t = T)
    var model = models[state.m], D = model.D, N = model.N, x = result.states[step], rho = result.rho[step];
    t = step; ui.time.value = step; ui.timeText.textContent = "t = " + step + " of " + state.T;
    var ctx = ui.circle.getContext("2d"), w = ui.circle.logical[0], R = w * 0.42, cx = w / 2, cy = w / 2, d, i;
    ctx.clearRect(0, 0, w, w);
    ctx.strokeStyle = "#ccc"; ctx.lineWidth = 1; ctx.beginPath(); ctx.arc(cx, cy, R, 0, 2 * Math.PI); ctx.stroke();
    var at = function (o) { return [cx + R * x[o * N], cy - R * x[o * N + 1]]; };
    ctx.strokeStyle = "#999"; ctx.lineWidth = 0.8;
    for (d = 0; d < D; d++) { var p = at(d), q = at(D + d); ctx.beginPath(); ctx.moveTo(p[0], p[1]); ctx.lineTo(q[0], q[1]); ctx.stroke(); }
    for (d = 0; d < D; d++) {
      var a = at(d), b = at(D + d);
      ctx.fillStyle = COLOURS[0]; ctx.globalAlpha = 0.85; ctx.beginPath(); ctx.arc(a[0], a[1], 4, 0, 2 * Math.PI); ctx.fill();
      ctx.strokeStyle = COLOURS[1]; ctx.lineWidth = 1.6; ctx.beginPath();
      ctx.moveTo(b[0] - 4, b[1] - 4); ctx.lineTo(b[0] + 4, b[1] + 4); ctx.moveTo(b[0] + 4, b[1] - 4); ctx.lineTo(b[0] - 4, b[1] + 4); ctx.stroke();
    }
    ctx.globalAlpha = 1;
    var locked = 0;
    for (d = 0; d < D; d++) if (rho[d] >= 2 * Math.cos(Math.PI / 12)) locked++; // within 30 degrees
    ui.circle.setAttribute("aria-label", "phase circle at t = " + step + ": " + locked + " of " + D + " features locked within 30 degrees");
    // coherence bars
    ctx = ui.bars.getContext("2d"); w = ui.bars.logical[0]; var h = ui.bars.logical[1], bw = (w - 30) / D;
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = "#555"; ctx.font = "11px sans-serif"; ctx.fillText("2", 2, 12); ctx.fillText("0", 2, h - 4);
    ctx.strokeStyle = "#ddd"; ctx.beginPath(); ctx.moveTo(24, 8); ctx.lineTo(w, 8); ctx.stroke();
    for (d = 0; d < D; d++) {
      var bh = (h - 16) * rho[d] / 2;
      ctx.fillStyle = rho[d] >= 2 * Math.cos(Math.PI / 12) ? "#2a9d8f" : "#e76f51";
      ctx.fillRect(28 + d * bw, h - 8 - bh, Math.max(1, bw - 1.5), bh);
    }
    var mean = 0; for (d = 0; d < D; d++) mean += rho[d] / D;
    ui.bars.setAttribute("aria-label", "coherence of the " + D + " features at t = " + step + ": mean " + mean.toFixed(3) + ", " + locked + " locked");
    // energy
    ctx = ui.energy.getContext("2d"); w = ui.energy.logical[0]; h = ui.energy.logical[1];
    var E = result.energies, lo = Math.min.apply(null, E), hi = Math.max.apply(null, E), span = hi - lo || 1;
    var X = function (k) { return 34 + (w - 42) * k / Math.max(1, E.length - 1); }, Y = function (e) { return 10 + (h - 28) * (hi - e) / span; };
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = "#555"; ctx.font = "11px sans-serif";
    ctx.fillText(hi.toFixed(2), 0, 14); ctx.fillText(lo.toFixed(2), 0, h - 18); ctx.fillText("t = 0", 30, h - 4); ctx.fillText("T", w - 12, h - 4);
    ctx.strokeStyle = "#333"; ctx.lineWidth = 1.5; ctx.beginPath();
    E.forEach(function (e, k) { if (k) ctx.lineTo(X(k), Y(e)); else ctx.moveTo(X(k), Y(e)); });
    ctx.stroke();
    ctx.fillStyle = COLOURS[1]; ctx.beginPath(); ctx.arc(X(step), Y(E[step]), 4, 0, 2 * Math.PI); ctx.fill();
    ui.energy.setAttribute("aria-label", "energy from " + E[0].toFixed(3) + " at t = 0 to " + E[E.length - 1].toFixed(3) + " at t = T; at t = " + step + ": " + E[step].toFixed(3));
    // verdict
    var v = result.verdict, same = v.probability >= 0.5;
    ui.verdict.innerHTML = "";
    ui.verdict.appendChild(el("span", { class: same ? "ox-same" : "ox-different", text: same ? "same" : "different" }));
    var pr = v.probability, shown = pr >= 1e-4 && pr <= 1 - 1e-4 ? pr.toFixed(4) : pr < 0.5 ? pr.toExponential(1) : "1 - " + (1 - pr).toExponential(1);
    ui.verdict.appendChild(document.createTextNode(" (probability of same: " + shown + ")"));
  }

  // ---------------------------------------------------------------- start
  function ensure(m) { // a split's model, its file loaded the first time it is asked for
    if (models[m]) return Promise.resolve(models[m]);
    return loadScript(base + "m" + m + ".js").then(function () {
      var p = payload("split", m);
      if (!p) throw new Error("m" + m + ".js holds no model");
      return (models[m] = new Model(p));
    });
  }
  function go(next, bad) { // apply a new state once its split's model is there
    say("Loading the model of m = " + next.m + " ...");
    ensure(next.m).then(function () {
      state = next; apply();
      if (bad && bad.length) say("The link's " + bad.join(", ") + " could not be used; the defaults stand in.", "warn");
    }).catch(function (err) {
      api.error = String(err.message || err);
      say("The model of m = " + next.m + " could not load: " + api.error + ".", "error");
      if (state) refresh();
    });
  }
  loadScript(base + "icons.js")
    .then(function () {
      var ic = payload("icons");
      if (!ic) throw new Error("icons.js holds no icons");
      var raw = bytes(ic.data), n = ic.shape[0] * ic.shape[1] * ic.shape[2];
      var px = new Float64Array(n), view = new DataView(raw.buffer);
      for (var i = 0; i < n; i++) px[i] = ic.dtype === "uint8" ? Math.fround(raw[i] / 255) : view.getFloat32(4 * i, true);
      icons = { shape: ic.shape, pixels: px, names: ic.names || [] };
      var parsed = fromHash(location.hash);
      return ensure(parsed.state.m).then(function () {
        root.classList.add("ox-loaded");
        build();
        paintPad();
        state = parsed.state; apply();
        if (parsed.bad.length) say("The link's " + parsed.bad.join(", ") + " could not be used; the defaults stand in.", "warn");
        window.addEventListener("hashchange", function () {
          if (location.hash === api.lastHash || !ours(location.hash)) return; // an anchor of the page keeps the state
          var p = fromHash(location.hash);
          go(p.state, p.bad);
        });
      });
    })
    .catch(function (err) {
      api.error = String(err.message || err);
      say("The explorable could not start: " + api.error + ". It needs the files the book build exports beside this page.", "error");
    });
})();
