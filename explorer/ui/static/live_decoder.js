// The Manifold page's live decoder (explorer/ui/live.py): decodes a latent point in the browser,
// mirroring VAE.decode(z).mean; the browser test checks its pixels against PyTorch's.
function unpack(payload) {
  // [4-byte length][JSON header][float32 weight, bias of each layer, little-endian]
  const bytes = payload instanceof Uint8Array ? payload : new Uint8Array(payload);
  const size = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
  const data = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + size)));
  let offset = 4 + size;
  const take = (count) => {
    const out = new Float32Array(bytes.slice(offset, offset + 4 * count).buffer);
    offset += 4 * count;
    return out;
  };
  const layers = data.layers.map((l) => ({ w: take(l.m * l.n), b: take(l.m), n: l.n, m: l.m }));
  return { data, layers };
}

function build(root, data, layers) {
  root.innerHTML = "";
  const s = { data, layers };
  s.z = Float32Array.from(data.start);
  s.version = 0;
  const box = document.createElement("div");
  box.className = "live";
  const sliders = document.createElement("div");
  sliders.className = "sliders";
  s.inputs = [];
  s.values = [];
  for (let j = 0; j < data.dims; j++) {
    const label = document.createElement("label");
    const row = document.createElement("div");
    row.className = "row";
    const name = document.createElement("span");
    name.textContent = "z" + (j + 1) + (data.inactive && data.inactive[j] ? " (inactive)" : "");
    if (data.inactive && data.inactive[j]) name.style.opacity = "0.55";
    const value = document.createElement("span");
    row.append(name, value);
    const input = document.createElement("input");
    const reach = data.reach || 4;  // a VAE's sliders span the prior's +/-4; an autoencoder's, its codes
    Object.assign(input, { type: "range", min: -reach, max: reach, step: reach / 80, value: s.z[j] });
    input.setAttribute("aria-label", "z" + (j + 1));
    input.addEventListener("input", () => { s.z[j] = parseFloat(input.value); draw(s); });
    label.append(row, input);
    sliders.append(label);
    s.inputs.push(input);
    s.values.push(value);
  }
  const [h, w] = data.shape;
  const digit = document.createElement("canvas");
  digit.className = "digit";
  digit.width = w; digit.height = h;
  digit.style.width = w * data.scale + "px"; digit.style.height = h * data.scale + "px";
  const map = document.createElement("div");
  map.className = "map";
  const img = document.createElement("img");
  img.src = data.map_png; img.width = data.map_size; img.height = data.map_size;
  const star = document.createElement("canvas");
  star.width = data.map_size; star.height = data.map_size;
  map.append(img, star);
  const pictures = document.createElement("div");
  pictures.className = "pictures";  // side by side, or one under the other on a phone
  pictures.append(digit, map);
  const right = document.createElement("div");
  right.className = "pictures-and-caption";
  const caption = document.createElement("div");
  caption.className = "caption";
  caption.textContent = data.caption;
  right.append(pictures, caption);
  box.append(sliders, right);
  root.append(box);
  Object.assign(s, { digit, star, image: new ImageData(w, h) });
  root.__live = s;  // for the browser test: the state, the last image, the timings
  return s;
}

function decode(s) {
  let h = s.z;
  const last = s.layers.length - 1;
  s.layers.forEach((l, i) => {
    const out = new Float32Array(l.m);
    for (let o = 0; o < l.m; o++) {
      let acc = l.b[o];
      const row = o * l.n;
      for (let k = 0; k < l.n; k++) acc += l.w[row + k] * h[k];
      if (i < last) acc = s.data.act === "relu" ? Math.max(acc, 0) : Math.tanh(acc);
      out[o] = acc;
    }
    h = out;
  });
  return h;  // logits (Bernoulli), or location logits then log-scales: the first D are used
}

function draw(s) {
  const t0 = performance.now();
  const out = decode(s);
  const px = s.image.data;
  const channels = s.data.channels || 1, plane = s.data.pixels / channels;
  const level = (v) => Math.round(255 / (1 + Math.exp(-v)));  // the mean: sigmoid of its logit
  for (let i = 0; i < plane; i++) {
    // outputs are (C, H, W): one plane per channel; a grey image repeats its one plane
    for (let c = 0; c < 3; c++) px[4 * i + c] = level(out[(channels === 3 ? c : 0) * plane + i]);
    px[4 * i + 3] = 255;
  }
  s.digit.getContext("2d").putImageData(s.image, 0, 0);
  // the star: the point through the scatter's projection, in the map's pixels
  const d = s.data, p = [0, 0];
  for (let j = 0; j < d.dims; j++) {
    for (let c = 0; c < 2; c++) p[c] += (s.z[j] - d.mean[j]) * d.components[j * 2 + c];
  }
  const scale = d.map_size / (2 * d.lim);
  const clamp = (v) => Math.min(Math.max(v, 6), d.map_size - 6);
  const x = clamp((p[0] + d.lim) * scale), y = clamp((d.lim - p[1]) * scale);
  const g = s.star.getContext("2d");
  g.clearRect(0, 0, d.map_size, d.map_size);
  g.beginPath();
  for (let i = 0; i < 10; i++) {
    const a = (i * Math.PI) / 5, r = i % 2 === 0 ? 11 : 4.5;
    g.lineTo(x + r * Math.sin(a), y - r * Math.cos(a));
  }
  g.closePath();
  g.fillStyle = "black"; g.strokeStyle = "white"; g.fill(); g.stroke();
  if (d.grid) {  // the Manifold grid's extent: its four corners through the same projection
    g.beginPath();
    d.grid.forEach((corner) => {
      const q = [0, 0];
      for (let j = 0; j < d.dims; j++) {
        for (let c = 0; c < 2; c++) q[c] += (corner[j] - d.mean[j]) * d.components[j * 2 + c];
      }
      g.lineTo((q[0] + d.lim) * scale, (d.lim - q[1]) * scale);
    });
    g.closePath();
    g.setLineDash([5, 3]); g.lineWidth = 1.5; g.strokeStyle = "#222"; g.stroke(); g.setLineDash([]);
  }
  s.z.forEach((v, j) => { s.values[j].textContent = v.toFixed(2); });
  s.version += 1;
  s.lastMs = performance.now() - t0;
  s.digit.dataset.version = s.version;
}

const states = new WeakMap();

export default function (component) {
  const { parentElement } = component;
  const payload = component.data;
  let s = states.get(parentElement);
  if (!s || s.payload !== payload) {
    const { data, layers } = unpack(payload);
    let root = parentElement.querySelector(".live-root");
    if (!root) {
      root = document.createElement("div");
      root.className = "live-root";
      parentElement.append(root);
    }
    if (s && s.data.signature === data.signature) {
      s.payload = payload;  // the same model sent again: keep the sliders where they are,
      s.data.grid = data.grid;  // and redraw the grid's outline, which follows the settings
      draw(s);
      return () => states.delete(parentElement);
    }
    s = build(root, data, layers);
    s.payload = payload;
    states.set(parentElement, s);
    draw(s);
  }
  return () => states.delete(parentElement);
}
