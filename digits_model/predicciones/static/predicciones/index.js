// Behaviour of templates/index.html: upload, drawing pad, prediction, feedback.
// A file, not inline, so the page runs under a strict Content-Security-Policy.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const output = $("output");
  let lastQuery = null;
  // Below this confidence the page offers the alternatives the API returns.
  const UNSURE_BELOW = 0.8;

  // --- model list -------------------------------------------------------------------------
  fetch("/models/").then((r) => r.ok ? r.json() : null).then((data) => {
    if (!data) return;
    const names = [...new Set(data.models.map((m) => m.model))];
    for (const name of names) {
      const opt = document.createElement("option");
      opt.value = name; opt.textContent = name;
      $("model").appendChild(opt);
    }
  }).catch(() => {});

  // --- prediction --------------------------------------------------------------------------
  async function predict(blob, filename) {
    const form = new FormData();
    form.append("image", blob, filename);
    if ($("model").value) form.append("model", $("model").value);
    output.className = "muted";
    output.textContent = "Reading…";
    try {
      const response = await fetch("/predict/", { method: "POST", body: form });
      const data = await response.json();
      if (!response.ok) throw new Error(data.error || ("HTTP " + response.status));
      show(data);
    } catch (err) {
      output.className = "error";
      output.textContent = err.message;
    }
  }

  function show(data) {
    lastQuery = data.query_id;
    output.className = "";
    output.innerHTML = "";
    const digit = document.createElement("div");
    digit.className = "digit"; digit.id = "prediction"; digit.textContent = data.prediction;
    output.appendChild(digit);
    const dl = document.createElement("dl");
    const rows = [
      ["Confidence", (100 * data.confidence).toFixed(1) + " %", "confidence"],
      ["Execution time", data.execution_time, "execution-time"],
      ["Model", data.model + " v" + data.model_version, "model-version"],
      ["Query id", data.query_id, "query-id"],
    ];
    for (const [label, value, id] of rows) {
      const dt = document.createElement("dt"); dt.textContent = label;
      const dd = document.createElement("dd"); dd.textContent = value; dd.id = id;
      dl.append(dt, dd);
    }
    output.appendChild(dl);
    // Unsure: offer the next most likely digits, one tap away (a tap is labelled feedback).
    if (data.confidence < UNSURE_BELOW && data.alternatives && data.alternatives.length) {
      const maybe = document.createElement("p");
      maybe.className = "maybe"; maybe.id = "alternatives";
      maybe.append("Or maybe ");
      data.alternatives.forEach((alt, i) => {
        if (i > 0) maybe.append(" or ");
        const b = document.createElement("button");
        b.type = "button"; b.className = "alternative"; b.textContent = alt.digit;
        b.title = (100 * alt.probability).toFixed(1) + " %";
        b.addEventListener("click", () => sendFeedback(alt.digit, maybe));
        maybe.appendChild(b);
      });
      maybe.append("?");
      output.appendChild(maybe);
    }
    const caption = document.createElement("p");
    caption.className = "muted"; caption.textContent = "What the model saw (8×8, 0–16):";
    output.appendChild(caption);
    const table = document.createElement("table");
    table.className = "seen"; table.id = "seen";
    for (const row of data.input_8x8) {
      const tr = document.createElement("tr");
      for (const v of row) {
        const td = document.createElement("td");
        const shade = Math.round(255 - (v / 16) * 255);
        td.style.background = `rgb(${shade},${shade},${shade})`;
        td.title = v;
        tr.appendChild(td);
      }
      table.appendChild(tr);
    }
    output.appendChild(table);
    const fb = document.createElement("div");
    fb.className = "feedback";
    fb.innerHTML = '<p class="muted">Wrong? Tell us the right digit:</p>';
    const buttons = document.createElement("div");
    buttons.className = "row"; buttons.style.justifyContent = "flex-start";
    for (let d = 0; d <= 9; d++) {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = d;
      b.addEventListener("click", () => sendFeedback(d, fb));
      buttons.appendChild(b);
    }
    fb.appendChild(buttons);
    output.appendChild(fb);
  }

  async function sendFeedback(label, box) {
    if (!lastQuery) return;
    const response = await fetch("/feedback/", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ query_id: lastQuery, label }),
    });
    const data = await response.json();
    box.innerHTML = response.ok
      ? `<p class="muted">Thanks: recorded ${data.label} for this query.</p>`
      : `<p class="error">${data.error}</p>`;
  }

  // --- upload: picker and drag-and-drop -----------------------------------------------------
  const drop = $("drop"), file = $("file"), preview = $("preview");
  // A photo above the service's upload limit (a phone's full-resolution picture) is sent
  // smaller: redrawn here with its long side at SEND_SIDE px, far more than a digit needs,
  // as a JPEG (EXIF orientation applied, transparency on white).
  const maxUpload = Number(document.querySelector("main").dataset.maxUpload) || Infinity;
  const SEND_SIDE = 2048;
  async function shrunk(f) {
    const bitmap = await createImageBitmap(f);
    const scale = Math.min(1, SEND_SIDE / Math.max(bitmap.width, bitmap.height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    const c = canvas.getContext("2d");
    c.fillStyle = "#fff"; c.fillRect(0, 0, canvas.width, canvas.height);
    c.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    return new Promise((resolve, reject) => canvas.toBlob(
      (blob) => blob ? resolve(blob) : reject(new Error("could not shrink")), "image/jpeg", 0.9));
  }
  async function useFile(f) {
    if (!f) return;
    preview.src = URL.createObjectURL(f); preview.hidden = false;
    let blob = f, name = f.name || "upload";
    if (f.size > maxUpload) {
      try {
        blob = await shrunk(f);
        name = name.replace(/\.[^.]*$/, "") + ".jpg";
      } catch (err) {
        // Not an image this browser decodes: sent as it is, the service says why.
      }
    }
    predict(blob, name);
  }
  file.addEventListener("change", () => useFile(file.files[0]));
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") file.click(); });
  for (const ev of ["dragenter", "dragover"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const ev of ["dragleave", "drop"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); });
  }
  drop.addEventListener("drop", (e) => useFile(e.dataTransfer.files[0]));

  // --- drawing pad (mouse, pen and touch through pointer events) -----------------------------
  const pad = $("pad"), ctx = pad.getContext("2d");
  let drawing = false, dirty = false;
  function reset() {
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, pad.width, pad.height);
    ctx.strokeStyle = "#000"; ctx.lineWidth = 18; ctx.lineCap = "round"; ctx.lineJoin = "round";
    dirty = false; $("send-drawing").disabled = true;
  }
  function point(e) {
    const r = pad.getBoundingClientRect();
    return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height];
  }
  pad.addEventListener("pointerdown", (e) => {
    drawing = true; pad.setPointerCapture(e.pointerId);
    const [x, y] = point(e);
    ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + 0.01, y); ctx.stroke();
  });
  pad.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    const [x, y] = point(e);
    ctx.lineTo(x, y); ctx.stroke();
    dirty = true; $("send-drawing").disabled = false;
  });
  for (const ev of ["pointerup", "pointercancel"]) {
    pad.addEventListener(ev, () => { drawing = false; });
  }
  $("clear").addEventListener("click", reset);
  $("send-drawing").addEventListener("click", () => {
    if (!dirty) return;
    pad.toBlob((blob) => predict(blob, "drawing.png"), "image/png");
  });
  reset();
})();
