/* SignSeek browser client: MediaPipe Holistic in the page, landmark windows posted to /v1/inference.
 *
 * Plain script, no build step. Needs holistic.js loaded first (window.Holistic). What the server
 * expects comes from /client/config.json (demo/client.py), computed from the server's own code.
 *
 * URL parameters (all optional): layout=holistic|pose_hands|canonical, top_k=5, interval_ms=1500
 * (time between posts), min_frames=32 (frames before the first post), window=96 (frames kept and
 * sent), stride=1 (clip mode: landmarks on every n-th frame).
 *
 * The GhSL guide's front-end example runs unchanged in this page: `currentFps` and
 * `updateUIWithPredictions(results)` are globals (see the bottom of this file).
 *
 * For tests and for the curious, window.signseek holds the state: frames (the sliding window),
 * clip (the last clip's frames and answer), responses, latencies, frameTimes.
 */
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const intParam = (name, fallback, lo, hi) => {
    const v = parseInt(params.get(name), 10);
    return Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : fallback;
  };
  const OPTIONS = {
    topK: intParam('top_k', 5, 1, 20),
    intervalMs: intParam('interval_ms', 1500, 250, 60000),
    minFrames: intParam('min_frames', 32, 2, 96),
    window: intParam('window', 96, 8, 96),
    stride: intParam('stride', 1, 1, 10),
  };
  const N = { pose: 33, face: 468, hand: 21 };

  const S = window.signseek = {
    ready: false, error: null, config: null, layout: null, options: OPTIONS,
    mode: 'idle', frames: [], framesSinceLastPost: 0, posts: 0, inFlight: false,
    responses: [], latencies: [], frameTimes: [], payloadBytes: [], captions: [],
    clip: null, holisticInitMs: null, retryAfter: 0,
  };
  let holistic = null;
  let current = null; // context of the frame being processed: {w, h, t, sink}
  let runToken = 0;
  let lastPostAt = 0;
  let timer = null;

  // ------------------------------------------------------------------ status and stats

  function setStatus(text, kind) {
    const el = $('status');
    el.textContent = text;
    el.className = 'status' + (kind ? ' ' + kind : '');
  }

  function fail(message) {
    S.error = message;
    setStatus(message, 'error');
  }

  const fmt = (v, digits) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));
  const median = (xs) => {
    if (!xs.length) return NaN;
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
  };

  function landmarkFps() {
    // Frames of landmarks per second of wall time, over the last 30 frames processed.
    const times = S.frameTimes.slice(-30);
    return times.length ? 1000 / median(times) : NaN;
  }

  function windowFps(frames) {
    // The rate the window was captured at (what the server resamples from): frames over time.
    if (frames.length < 2) return null;
    const span = (frames[frames.length - 1].t - frames[0].t) / 1000;
    return span > 0 ? (frames.length - 1) / span : null;
  }

  function updateStats() {
    // The capture rate of what would be sent (the guide's `currentFps`): the camera window's,
    // or the last clip's; never the landmark rate of a clip stepped slower than real time.
    window.currentFps = (S.mode === 'camera' ? windowFps(S.frames) : S.clip && S.clip.fps) || window.currentFps;
    $('stat-fps').textContent = fmt(landmarkFps(), 1);
    $('stat-window').textContent = `${S.frames.length} / ${OPTIONS.window} frames`;
    const last = S.latencies[S.latencies.length - 1];
    $('stat-latency').textContent = last === undefined ? '–' : `${Math.round(last)} ms`;
    const resp = S.responses[S.responses.length - 1];
    const total = resp && resp.timings_ms ? resp.timings_ms.total : undefined;
    $('stat-server').textContent = total === undefined ? '–' : `${Math.round(total)} ms`;
    const bytes = S.payloadBytes[S.payloadBytes.length - 1];
    $('stat-payload').textContent = bytes === undefined ? '–' : `${Math.round(bytes / 1024)} KB`;
  }

  // ------------------------------------------------------------------ landmarks -> flat frame

  // One frame in a SignSeek flat layout (signseek/landmarks/layouts.py): holistic = pose 33 x
  // (x, y, z, visibility), face 468 x 3, left hand 21 x 3, right hand 21 x 3 (1662 values);
  // pose_hands = pose 33 x 4 + hands (258); canonical = pose 33 x 3, face, hands with null where
  // not detected (1629). A part not detected is all zeros (null in canonical). Coordinates go on
  // the server's canonical frame: padded (in coordinates) to config.canonical_aspect, exactly as
  // signseek.landmarks.extract.letterbox_points does for clips the server extracts itself.
  function flatFrame(results, layout, width, height) {
    const aspect = S.config.canonical_aspect || width / height; // null: the frame's own shape
    const outW = Math.max(width, height * aspect);
    const outH = Math.max(height, width / aspect);
    const ax = width / outW, bx = (outW - width) / 2 / outW;
    const ay = height / outH, by = (outH - height) / 2 / outH;
    const canonical = layout === 'canonical';
    const missing = canonical ? null : 0;
    const r5 = (v) => (Number.isFinite(v) ? Math.round(v * 1e5) / 1e5 : missing);
    const out = [];
    const put = (points, n, withVisibility) => {
      const per = withVisibility ? 4 : 3;
      if (!points || points.length < n) {
        for (let i = 0; i < n * per; i++) out.push(missing);
        return;
      }
      for (let i = 0; i < n; i++) {
        const p = points[i];
        out.push(r5(p.x * ax + bx), r5(p.y * ay + by), r5(p.z * ax));
        if (withVisibility) out.push(r5(p.visibility === undefined ? 0 : p.visibility));
      }
    };
    put(results.poseLandmarks, N.pose, !canonical);
    if (layout !== 'pose_hands') put(results.faceLandmarks, N.face, false);
    put(results.leftHandLandmarks, N.hand, false);
    put(results.rightHandLandmarks, N.hand, false);
    return out;
  }

  // ------------------------------------------------------------------ drawing

  function draw(results, width, height, image) {
    const canvas = $('overlay');
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    const ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, width, height);
    if (image) ctx.drawImage(image, 0, 0, width, height); // a clip's frame (the <video> shows its end)
    const lines = (points, edges, colour) => {
      if (!points) return;
      ctx.strokeStyle = colour;
      ctx.lineWidth = Math.max(2, width / 200);
      ctx.beginPath();
      for (const [a, b] of edges) {
        if (!points[a] || !points[b]) continue;
        ctx.moveTo(points[a].x * width, points[a].y * height);
        ctx.lineTo(points[b].x * width, points[b].y * height);
      }
      ctx.stroke();
    };
    const upperPose = (window.POSE_CONNECTIONS || []).filter(([a, b]) => a <= 22 && b <= 22);
    lines(results.poseLandmarks, upperPose, 'rgba(255,255,255,0.8)');
    lines(results.leftHandLandmarks, window.HAND_CONNECTIONS || [], '#f4b400');
    lines(results.rightHandLandmarks, window.HAND_CONNECTIONS || [], '#0f9d58');
  }

  // ------------------------------------------------------------------ Holistic

  function simdSupported() {
    // The smallest module using a v128 instruction (what WebAssembly feature detection uses).
    const bytes = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10,
      1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);
    try { return WebAssembly.validate(bytes); } catch (e) { return false; }
  }

  function onResults(results) {
    const ctx = current;
    if (!ctx) return;
    const frame = {
      values: flatFrame(results, S.layout, ctx.w, ctx.h),
      t: ctx.t,
      pose: !!results.poseLandmarks,
      hands: !!(results.leftHandLandmarks || results.rightHandLandmarks),
      left: !!results.leftHandLandmarks,
      right: !!results.rightHandLandmarks,
    };
    ctx.sink(frame);
    draw(results, ctx.w, ctx.h, ctx.image);
  }

  async function process(image, w, h, t, sink, timestampMs) {
    current = { w, h, t, sink, image: timestampMs === undefined ? null : image };
    const t0 = performance.now();
    // A clip's frames carry their own time (as MediaPipe's Python solution gives each frame its
    // place in the clip); holistic.js only exposes that on its inner solution object.
    const inner = holistic.h;
    if (timestampMs !== undefined && inner && typeof inner.send === 'function' && inner.send.length >= 2) {
      await inner.send({ image }, timestampMs);
    } else {
      await holistic.send({ image });
    }
    S.frameTimes.push(performance.now() - t0);
    if (S.frameTimes.length > 300) S.frameTimes.splice(0, S.frameTimes.length - 300);
    current = null;
  }

  async function initHolistic() {
    if (typeof window.Holistic !== 'function') {
      throw new Error('MediaPipe Holistic did not load (holistic.js missing from /client/static/vendor/)');
    }
    if (!simdSupported()) {
      throw new Error('This browser cannot run WebAssembly SIMD, which on-device landmarks need: use a ' +
        'current Chrome, Edge, Firefox or Safari (16.4 or later), or the full demo at / (landmarks on the server).');
    }
    const cfg = S.config.holistic;
    holistic = new window.Holistic({ locateFile: (file) => cfg.base + file });
    holistic.setOptions({
      modelComplexity: cfg.model_complexity,
      smoothLandmarks: cfg.smooth_landmarks,
      refineFaceLandmarks: cfg.refine_face_landmarks,
      enableSegmentation: false,
      minDetectionConfidence: 0.5,
      minTrackingConfidence: 0.5,
    });
    holistic.onResults(onResults);
    const t0 = performance.now();
    await holistic.initialize();
    S.holisticInitMs = performance.now() - t0;
  }

  // ------------------------------------------------------------------ answers

  function explain(reason) {
    return (S.config && S.config.reasons[reason]) || reason || '';
  }

  function cell(text, cls) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  // The guide's results (one entry per candidate, best first) -> the table and the verdict.
  function renderResults(results) {
    const list = Array.isArray(results) ? results : [];
    const body = $('results').querySelector('tbody');
    body.replaceChildren();
    list.forEach((r, i) => {
      const tr = document.createElement('tr');
      const name = r.sentence || r.label || '?';
      tr.append(
        cell(String(i + 1)),
        cell(r.label && r.label !== name ? `${name} (${r.label})` : name, 'sentence'),
        cell(r.category || ''),
        cell(fmt(r.similarity, 3)),
        cell(fmt(r.confidence, 3)),
        cell(fmt(r.proto_similarity, 3)),
        cell(fmt(r.dtw_score, 3)),
        cell(i === 0 ? (r.accepted ? 'accepted' : `rejected: ${r.rejection_reason || '?'}`) : '',
          i === 0 ? (r.accepted ? 'ok' : 'no') : ''),
      );
      body.append(tr);
    });
    const verdict = $('verdict');
    const reasonEl = $('reason');
    const top = list[0];
    if (!top) {
      verdict.textContent = 'No sign';
      verdict.className = 'verdict no';
      reasonEl.textContent = 'The server returned no candidates.';
    } else if (top.accepted) {
      verdict.textContent = `Recognised: ${top.sentence || top.label}`;
      verdict.className = 'verdict ok';
      reasonEl.textContent = `similarity ${fmt(top.similarity, 2)}, confidence ${fmt(top.confidence, 2)}`;
      addCaption(top.sentence || top.label);
    } else {
      const noSign = S.config && S.config.no_sign_reasons.includes(top.rejection_reason);
      verdict.textContent = noSign ? 'No sign' : `Not sure (closest: ${top.sentence || top.label})`;
      verdict.className = 'verdict no';
      reasonEl.textContent = explain(top.rejection_reason);
    }
  }

  // The whole response: the guide's results, or SignSeek's top-level verdict when the input gates
  // stopped the clip before any candidate was compared (no hands, no motion).
  function renderResponse(data) {
    S.responses.push(data);
    if (S.responses.length > 50) S.responses.shift();
    if ((!data.results || !data.results.length) && data.rejection_reason) {
      renderResults([]);
      $('verdict').textContent = 'No sign';
      $('reason').textContent = explain(data.rejection_reason);
    } else {
      renderResults(data.results);
    }
  }

  function addCaption(text) {
    const caps = S.captions;
    const now = performance.now();
    if (caps.length && caps[caps.length - 1].text === text && now - caps[caps.length - 1].t < 5000) return;
    caps.push({ text, t: now });
    $('captions').textContent = caps.slice(-12).map((c) => c.text).join(' · ');
  }

  function showProblem(message) {
    const verdict = $('verdict');
    verdict.textContent = 'Problem';
    verdict.className = 'verdict err';
    $('reason').textContent = message;
  }

  // POST frames as the guide's SequencePayload; returns the parsed response or null.
  async function postFrames(frames, fps, source) {
    const payload = {
      frames: frames.map((f) => f.values),
      top_k: OPTIONS.topK,
      layout: S.layout,
      metadata: { fps: fps ? Math.round(fps * 100) / 100 : undefined, source },
    };
    const body = JSON.stringify(payload);
    S.payloadBytes.push(body.length);
    S.inFlight = true;
    S.posts += 1;
    const t0 = performance.now();
    try {
      const response = await fetch(S.config.inference_url, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body,
      });
      let data = null;
      try { data = await response.json(); } catch (e) { data = null; }
      const ms = performance.now() - t0;
      if (!response.ok) {
        if (response.status === 429) {
          const wait = parseFloat(response.headers.get('Retry-After') || '2');
          S.retryAfter = performance.now() + 1000 * (Number.isFinite(wait) ? wait : 2);
        }
        showProblem((data && (data.message || data.detail)) || `the server answered ${response.status}`);
        return null;
      }
      S.latencies.push(ms);
      if (S.latencies.length > 200) S.latencies.shift();
      renderResponse(data);
      return data;
    } catch (e) {
      showProblem(`the server could not be reached (${e.message}); is it running?`);
      return null;
    } finally {
      S.inFlight = false;
      updateStats();
    }
  }

  // ------------------------------------------------------------------ camera

  function cameraProblem(e) {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return 'This page cannot reach a camera: browsers only allow it over https or on localhost.';
    }
    switch (e && e.name) {
      case 'NotAllowedError': return 'The camera was refused: allow it for this site in the browser, then start again.';
      case 'NotFoundError': return 'No camera was found: plug one in, or recognise a clip instead.';
      case 'NotReadableError': return 'The camera is busy in another program: close it there and start again.';
      default: return `The camera could not start: ${e && e.message ? e.message : e}`;
    }
  }

  function nextVideoFrame(video) {
    return new Promise((resolve) => {
      if (video.requestVideoFrameCallback) video.requestVideoFrameCallback((now, meta) => resolve(meta));
      else requestAnimationFrame(() => resolve(null));
    });
  }

  function stopAll() {
    runToken += 1;
    if (timer) clearInterval(timer);
    timer = null;
    const video = $('video');
    if (video.srcObject) {
      video.srcObject.getTracks().forEach((track) => track.stop());
      video.srcObject = null;
    }
    video.pause();
    S.mode = 'idle';
    $('stop').disabled = true;
    $('start-camera').disabled = !S.ready;
    $('clip-file').disabled = !S.ready;
  }

  async function startCamera() {
    stopAll();
    const token = runToken;
    let video = $('video');
    if (video.getAttribute('src')) { // a clip was read in it: start the camera in a fresh element
      const fresh = video.cloneNode(false);
      fresh.removeAttribute('src');
      video.replaceWith(fresh);
      video = fresh;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: 'user' }, audio: false,
      });
    } catch (e) {
      fail(cameraProblem(e));
      return;
    }
    S.error = null;
    video.srcObject = stream;
    video.classList.add('mirror');
    $('overlay').classList.add('mirror');
    await video.play();
    $('placeholder').hidden = true;
    holistic.reset();
    S.frames = [];
    S.framesSinceLastPost = 0;
    S.mode = 'camera';
    $('stop').disabled = false;
    setStatus('Camera on: sign into it. Landmarks run on this device; windows go to the server every ' +
      `${(OPTIONS.intervalMs / 1000).toFixed(1)} s.`);
    timer = setInterval(() => maybePost(token), 200);
    while (token === runToken) {
      await nextVideoFrame(video);
      if (token !== runToken || video.readyState < 2) continue;
      await process(video, video.videoWidth, video.videoHeight, performance.now(), (frame) => {
        S.frames.push(frame);
        if (S.frames.length > OPTIONS.window) S.frames.splice(0, S.frames.length - OPTIONS.window);
        S.framesSinceLastPost += 1;
      });
      updateStats();
    }
  }

  async function maybePost(token) {
    const now = performance.now();
    if (token !== runToken || S.inFlight || now < S.retryAfter) return;
    if (now - lastPostAt < OPTIONS.intervalMs) return; // cooldown between posts
    if (S.frames.length < OPTIONS.minFrames || S.framesSinceLastPost === 0) return;
    lastPostAt = now;
    S.framesSinceLastPost = 0;
    const frames = S.frames.slice();
    const data = await postFrames(frames, windowFps(frames), 'webcam');
    if (data && token === runToken && data.accepted) {
      // An accepted sign starts a fresh window, so the same sign is not captioned twice.
      S.frames = [];
    }
  }

  // ------------------------------------------------------------------ clip, frame by frame

  // Step a <video> one presented frame at a time: play slowly, pause in the frame callback and
  // copy the frame there, synchronously. (Seeking a paused video is not reliable frame by frame
  // in every browser, and anything asynchronous between frames makes a busy browser drop some.)
  // Frames are read first and landmarks run afterwards, for the same reason. A dropped frame is
  // not a problem: each frame keeps its media time, which is what the server's fps comes from.
  const MAX_SIDE = 640; // as the server's extraction (DEFAULT_MAX_SIDE): MediaPipe crops each part smaller
  const MAX_CLIP_FRAMES = 300; // frames held in memory at once (10 s at 30 fps; `stride` reads longer clips)

  function stepFrame(video, canvas) {
    return new Promise((resolve) => {
      if (video.ended) { resolve(null); return; }
      let settled = false;
      const done = (value) => { if (!settled) { settled = true; video.onended = null; resolve(value); } };
      video.requestVideoFrameCallback((now, meta) => {
        video.pause();
        const ctx = canvas.getContext('2d', { willReadFrequently: true });
        ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
        done({ mediaTime: meta.mediaTime, image: ctx.getImageData(0, 0, canvas.width, canvas.height) });
      });
      video.onended = () => done(null);
      video.play().catch(() => done(null));
    });
  }

  async function readClipFrames(video, token, name) {
    const scale = Math.min(1, MAX_SIDE / Math.max(video.videoWidth, video.videoHeight));
    const canvas = document.createElement('canvas');
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    const limit = Math.min(S.config.max_frames, MAX_CLIP_FRAMES);
    const kept = [];
    let index = 0;
    while (token === runToken) {
      const frame = await stepFrame(video, canvas);
      if (!frame || token !== runToken) break;
      if (index++ % OPTIONS.stride) continue;
      if (kept.length >= limit) {
        throw new Error(`${name} is too long for the browser: at most ${limit} frames are read ` +
          `(every ${OPTIONS.stride}. frame now); cut the clip, or add ?stride=${OPTIONS.stride + 1} to the address`);
      }
      kept.push({ ...frame, width: video.videoWidth, height: video.videoHeight });
      if (kept.length % 10 === 0) setStatus(`Reading ${name}: ${kept.length} frames…`);
    }
    return kept;
  }

  async function recogniseClip(source, name) {
    stopAll();
    const token = runToken;
    const video = $('video');
    video.classList.remove('mirror');
    $('overlay').classList.remove('mirror');
    if (!video.requestVideoFrameCallback) {
      fail('This browser cannot step through a clip frame by frame (no requestVideoFrameCallback): use the camera, or the full demo at /.');
      return null;
    }
    video.src = source;
    try {
      await new Promise((resolve, reject) => {
        video.onloadeddata = resolve;
        video.onerror = () => reject(new Error(`${name} could not be decoded by this browser: try an mp4 (H.264) or webm clip`));
      });
    } catch (e) {
      fail(e.message);
      return null;
    }
    $('placeholder').hidden = true;
    video.playbackRate = 0.25;
    holistic.reset();
    S.mode = 'clip';
    $('stop').disabled = false;
    const clip = S.clip = { name, frames: [], mediaTimes: [], done: false, response: null, stride: OPTIONS.stride };
    setStatus(`Reading ${name}…`);
    let read;
    try {
      read = await readClipFrames(video, token, name);
    } catch (e) {
      fail(e.message);
      return null;
    }
    clip.read = read.map((item) => item.mediaTime);
    const work = document.createElement('canvas');
    const base = performance.now();
    for (const item of read) {
      if (token !== runToken) break;
      work.width = item.image.width;
      work.height = item.image.height;
      work.getContext('2d').putImageData(item.image, 0, 0);
      item.image = null; // free it as we go
      await process(work, item.width, item.height, item.mediaTime * 1000, (frame) => {
        clip.frames.push(frame);
        clip.mediaTimes.push(item.mediaTime);
      }, base + item.mediaTime * 1000);
      setStatus(`Landmarks on ${name}: ${clip.frames.length} of ${read.length} frames ` +
        `(${fmt(landmarkFps(), 2)} a second)…`);
      updateStats();
    }
    if (token !== runToken) return null;
    if (!clip.frames.length) {
      fail(`${name} gave no frames: is it a video?`);
      return null;
    }
    const frames = clip.frames;
    const fps = windowFps(frames);
    clip.fps = fps;
    window.currentFps = fps || window.currentFps;
    setStatus(`Sending ${frames.length} frames of landmarks from ${name}…`);
    clip.response = await postFrames(frames, fps, 'clip');
    clip.done = true;
    if (clip.response) setStatus(`${name}: ${clip.frames.length} frames of landmarks extracted in this browser and recognised.`);
    S.mode = 'idle';
    $('stop').disabled = true;
    return clip.response;
  }

  // ------------------------------------------------------------------ start-up

  async function main() {
    try {
      const response = await fetch('/client/config.json');
      if (!response.ok) throw new Error(`/client/config.json answered ${response.status}`);
      S.config = await response.json();
    } catch (e) {
      fail(`The server's client settings could not be read (${e.message}).`);
      return;
    }
    const wanted = params.get('layout');
    S.layout = wanted && S.config.layouts[wanted] ? wanted : S.config.layout;
    const select = $('layout');
    for (const [name, size] of Object.entries(S.config.layouts)) {
      const option = new Option(`${name} (${size} values)`, name, false, name === S.layout);
      select.append(option);
    }
    select.addEventListener('change', () => { S.layout = select.value; S.frames = []; });
    try {
      await initHolistic();
    } catch (e) {
      fail(e.message);
      return;
    }
    S.ready = true;
    $('start-camera').disabled = false;
    $('clip-file').disabled = false;
    setStatus(`Ready (model loaded in ${(S.holisticInitMs / 1000).toFixed(1)} s). Start the camera or open a clip.`);
    $('start-camera').addEventListener('click', () => { startCamera(); });
    $('stop').addEventListener('click', () => { stopAll(); setStatus('Stopped.'); });
    $('clip-file').addEventListener('change', (event) => {
      const file = event.target.files && event.target.files[0];
      if (file) recogniseClip(URL.createObjectURL(file), file.name);
    });
  }

  // The GhSL guide's example front-end code calls these two globals.
  window.currentFps = 30;
  window.updateUIWithPredictions = renderResults;
  S.recogniseClip = recogniseClip;
  S.startCamera = startCamera;
  S.stop = stopAll;
  S.postFrames = postFrames;
  main();
}());
