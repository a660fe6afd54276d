// The LeNet-5 demo page: draw (pointer events) or upload, POST to api/predict, show what comes back.
"use strict";

(() => {
  const SIZE = 280; // the drawing canvas, in its own units (CSS scales it)
  const STROKE = 18; // pen width: a digit ~200 units high gets MNIST's ~2-pixel strokes in 20x20
  const SEND = 84; // the drawing is sent as 84x84 grey values (3x MNIST); the server normalises it
  const DEBOUNCE_MS = 120; // ask once the pen has paused this long...
  const MAX_WAIT_MS = 350; // ...or at least this often while it keeps moving
  // Layers shown, with the sizes the API sends: [key, title, maps, side, CSS side in px, columns].
  const LAYERS = [
    ["input", "Input 32\u00d732", 1, 32, 96, 1],
    ["c1", "C1: 6 maps 28\u00d728", 6, 28, 56, 3],
    ["s2", "S2: 6 maps 14\u00d714", 6, 14, 42, 3],
    ["c3", "C3: 16 maps 10\u00d710", 16, 10, 40, 4],
    ["s4", "S4: 16 maps 5\u00d75", 16, 5, 30, 4],
  ];

  const pad = document.getElementById("pad");
  const ctx = pad.getContext("2d", { willReadFrequently: true });
  const small = document.createElement("canvas");
  small.width = small.height = SEND;
  const smallCtx = small.getContext("2d", { willReadFrequently: true });
  const statusLine = document.getElementById("status");
  const digitOut = document.getElementById("digit");
  const confidenceOut = document.getElementById("confidence");
  const fileInput = document.getElementById("file");

  let inked = false; // anything on the pad worth sending
  let drawing = false;
  let last = null;
  let generation = 0; // bumped by Clear and uploads: answers to older requests are dropped
  let asked = 0; // requests sent so far
  let shown = 0; // the latest request whose answer is on the page: an answer overtaken by a newer one is dropped
  let inFlight = false;
  let again = false; // the drawing changed while a request was in flight
  let timer = null;
  let firstPending = 0;

  // ---- the page's parts ------------------------------------------------------------------------
  const bars = [];
  const barBox = document.getElementById("bars");
  for (let d = 0; d < 10; d++) {
    const row = document.createElement("div");
    row.className = "bar-row";
    row.dataset.digit = String(d);
    row.innerHTML = `<span class="label">${d}</span><div class="track"><div class="bar"></div></div><span class="value"></span>`;
    barBox.appendChild(row);
    bars.push(row);
  }

  const mapCanvases = {};
  const mapBox = document.getElementById("maps");
  for (const [key, title, count, side, css, cols] of LAYERS) {
    const layer = document.createElement("div");
    layer.className = "layer";
    const h3 = document.createElement("h3");
    h3.textContent = title;
    const maps = document.createElement("div");
    maps.className = "maps";
    maps.id = `maps-${key}`;
    maps.style.setProperty("--cols", String(cols));
    mapCanvases[key] = [];
    for (let i = 0; i < count; i++) {
      const c = document.createElement("canvas");
      c.width = c.height = side;
      c.style.setProperty("--side", `${css}px`);
      c.setAttribute("aria-label", `${key} map ${i + 1}`);
      maps.appendChild(c);
      mapCanvases[key].push(c);
    }
    layer.append(h3, maps);
    mapBox.appendChild(layer);
  }

  // ---- drawing -----------------------------------------------------------------------------------
  function clearPad() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, SIZE, SIZE);
    inked = false;
  }

  function at(e) {
    const r = pad.getBoundingClientRect();
    return [((e.clientX - r.left) * SIZE) / r.width, ((e.clientY - r.top) * SIZE) / r.height];
  }

  function segment(from, to) {
    ctx.strokeStyle = "#000";
    ctx.lineWidth = STROKE;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(from[0], from[1]);
    ctx.lineTo(to[0], to[1]);
    ctx.stroke();
    inked = true;
  }

  pad.addEventListener("pointerdown", (e) => {
    if (e.pointerType === "mouse" && e.button !== 0) return;
    e.preventDefault();
    pad.setPointerCapture(e.pointerId);
    drawing = true;
    last = at(e);
    segment(last, last); // a dot
    schedule();
  });
  pad.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
    for (const ev of events.length ? events : [e]) {
      const p = at(ev);
      segment(last, p);
      last = p;
    }
    schedule();
  });
  for (const type of ["pointerup", "pointercancel"]) {
    pad.addEventListener(type, () => {
      if (!drawing) return;
      drawing = false;
      schedule();
    });
  }

  // Debounced while drawing: DEBOUNCE_MS after the last change, but no later than MAX_WAIT_MS after the first.
  function schedule() {
    const now = performance.now();
    if (timer === null) firstPending = now;
    clearTimeout(timer);
    const wait = Math.max(0, Math.min(DEBOUNCE_MS, firstPending + MAX_WAIT_MS - now));
    document.body.dataset.pending = "1"; // for tests and styles: an answer is on its way
    timer = setTimeout(() => {
      timer = null;
      delete document.body.dataset.pending;
      sendDrawing();
    }, wait);
  }

  function drawingPixels() {
    smallCtx.imageSmoothingEnabled = true;
    smallCtx.imageSmoothingQuality = "high";
    smallCtx.drawImage(pad, 0, 0, SEND, SEND);
    const rgba = smallCtx.getImageData(0, 0, SEND, SEND).data;
    const rows = [];
    for (let y = 0; y < SEND; y++) {
      const row = new Array(SEND);
      for (let x = 0; x < SEND; x++) {
        const i = (y * SEND + x) * 4;
        row[x] = Math.round(0.299 * rgba[i] + 0.587 * rgba[i + 1] + 0.114 * rgba[i + 2]);
      }
      rows.push(row);
    }
    return rows;
  }

  function sendDrawing() {
    if (!inked) return;
    if (inFlight) {
      again = true;
      return;
    }
    const body = JSON.stringify({ pixels: drawingPixels() });
    ask({ method: "POST", headers: { "Content-Type": "application/json" }, body });
  }

  // ---- asking the server ---------------------------------------------------------------------------
  async function ask(init) {
    const mine = generation;
    const seq = ++asked;
    inFlight = true;
    document.body.dataset.busy = "1";
    try {
      const response = await fetch("api/predict?features=1", init);
      const answer = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
      if (mine !== generation || seq < shown) return;
      shown = seq;
      if (response.ok) {
        show(answer);
      } else {
        showError(answer.error || `HTTP ${response.status}`, response.status);
      }
    } catch (err) {
      if (mine === generation && seq >= shown) showError(`cannot reach the server (${err.message})`, 0);
    } finally {
      inFlight = false;
      delete document.body.dataset.busy;
      if (again) {
        again = false;
        sendDrawing();
      }
    }
  }

  // ---- showing the answer ----------------------------------------------------------------------------
  function show(answer) {
    digitOut.textContent = String(answer.digit);
    confidenceOut.textContent = `confidence ${answer.confidence.toFixed(2)}`;
    const top = Math.max(...answer.penalties);
    answer.penalties.forEach((p, d) => {
      const row = bars[d];
      row.classList.toggle("best", d === answer.digit);
      row.querySelector(".bar").style.width = `${Math.max(1.5, (100 * p) / top)}%`;
      row.querySelector(".value").textContent = p.toFixed(p < 10 ? 2 : 1);
      row.dataset.penalty = String(p);
    });
    paint(mapCanvases.input[0], answer.input, answer.input_range);
    for (const key of ["c1", "s2", "c3", "s4"]) {
      answer.features[key].forEach((map, i) => paint(mapCanvases[key][i], map, answer.features_range));
    }
    setStatus(`Prediction ${answer.digit}, confidence ${answer.confidence.toFixed(2)}.`, false);
  }

  // A map of values in [lo, hi] as grey levels, dark = high (so the input reads as ink on paper).
  function paint(canvas, rows, [lo, hi]) {
    const h = rows.length;
    const w = rows[0].length;
    const c = canvas.getContext("2d");
    const image = c.createImageData(w, h);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const t = Math.min(1, Math.max(0, (rows[y][x] - lo) / (hi - lo)));
        const g = Math.round(255 * (1 - t));
        const i = (y * w + x) * 4;
        image.data[i] = image.data[i + 1] = image.data[i + 2] = g;
        image.data[i + 3] = 255;
      }
    }
    c.putImageData(image, 0, 0);
    canvas.dataset.drawn = "1";
  }

  function resetAnswer() {
    digitOut.textContent = "\u2013";
    confidenceOut.textContent = "";
    for (const row of bars) {
      row.classList.remove("best");
      row.querySelector(".bar").style.width = "0";
      row.querySelector(".value").textContent = "";
      delete row.dataset.penalty;
    }
    for (const list of Object.values(mapCanvases)) {
      for (const c of list) {
        c.getContext("2d").clearRect(0, 0, c.width, c.height);
        delete c.dataset.drawn;
      }
    }
  }

  function showError(message, status) {
    resetAnswer();
    const hint = status === 422 ? " Draw a bigger or clearer digit." : "";
    setStatus(`${message}.${hint}`, true);
  }

  function setStatus(text, isError) {
    statusLine.textContent = text;
    statusLine.classList.toggle("error", isError);
  }

  // ---- buttons -------------------------------------------------------------------------------------
  document.getElementById("clear").addEventListener("click", () => {
    generation++;
    clearTimeout(timer);
    timer = null;
    delete document.body.dataset.pending;
    again = false;
    clearPad();
    resetAnswer();
    setStatus("Draw a digit with the mouse or a finger.", false);
  });

  document.getElementById("upload").addEventListener("click", () => fileInput.click());

  fileInput.addEventListener("change", async () => {
    const file = fileInput.files[0];
    if (!file) return;
    generation++;
    clearTimeout(timer);
    timer = null;
    delete document.body.dataset.pending;
    again = false;
    clearPad();
    try {
      const bitmap = await createImageBitmap(file); // a preview on the pad; the server gets the file itself
      const scale = Math.min(SIZE / bitmap.width, SIZE / bitmap.height);
      const w = bitmap.width * scale;
      const h = bitmap.height * scale;
      ctx.drawImage(bitmap, (SIZE - w) / 2, (SIZE - h) / 2, w, h);
      bitmap.close();
      inked = true; // strokes drawn on top of the photo send the whole pad
    } catch {
      // not an image the browser can show: the server says why
    }
    setStatus(`Reading ${file.name}\u2026`, false);
    const form = new FormData();
    form.append("file", file);
    fileInput.value = ""; // choosing the same file again fires change again
    ask({ method: "POST", body: form });
  });

  clearPad();
})();
