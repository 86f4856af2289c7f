// The web chat page: one session, one chat, messages pushed by the server (SSE).
// What a person typed is only ever set as text; the bot's messages are Telegram-style HTML from the
// catalogs, copied into the page through a whitelist of tags (nothing else is ever parsed as HTML), or in the
// demo's text-only view ("as on Zalo") plain text, set as text.
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const log = $("log");
  const input = $("text");
  const statusLine = $("status");
  const commandsBox = $("commands");
  const commandsToggle = $("commands-toggle");
  const personaSelect = $("persona");
  const textView = $("text-view");
  const counter = $("counter");
  const newMarker = $("new-marker");

  const state = {
    csrf: "",
    lang: document.documentElement.lang || "vi",
    texts: {},
    operator: "",
    mode: "",
    persona: "me",
    personas: [],
    view: "web",
    views: [],
    campaigns: [],
    limits: { text: 4096, upload: 20 * 1024 * 1024 },
    versions: new Map(),
    events: null,
    reconnect: null,
    chat: "", // whose chat the log shows (persona and view): only a switch empties it
    asked: null, // the longest answer the bot's latest message asks for (a report's content), if it says
    unread: 0,
  };

  // ---- texts --------------------------------------------------------------------------------------

  function t(key, values = {}) {
    const template = (state.texts[state.lang] || {})[key] ?? (state.texts.vi || {})[key] ?? "";
    return template.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
  }

  function applyTexts() {
    if (!state.texts[state.lang]) return;
    document.documentElement.lang = state.lang;
    const values = { operator: state.operator };
    for (const el of document.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t, values);
    for (const el of document.querySelectorAll("[data-t-placeholder]")) {
      el.placeholder = t(el.dataset.tPlaceholder);
      el.setAttribute("aria-label", el.placeholder);
    }
    for (const el of document.querySelectorAll("[data-t-title]")) {
      el.title = t(el.dataset.tTitle);
      el.setAttribute("aria-label", el.title);
    }
    renderTitle();
    renderPersonas();
    renderCampaigns();
    renderView();
  }

  // Messages that came while the tab was hidden are counted in its title, as chat apps do.
  function renderTitle() {
    const title = (state.mode === "demo" ? t("demo.tag") + " · " : "") + t("web.title", { operator: state.operator });
    document.title = (state.unread ? `(${state.unread}) ` : "") + title;
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.unread) {
      state.unread = 0;
      renderTitle();
    }
  });

  function setLanguage(lang) {
    if (lang && lang !== state.lang) {
      state.lang = lang;
      applyTexts();
    }
  }

  // ---- status line ----------------------------------------------------------------------------------

  let statusTimer = null;

  function showStatus(text, kind = "error", sticky = false) {
    clearTimeout(statusTimer);
    statusLine.textContent = text;
    statusLine.className = kind;
    statusLine.hidden = false;
    if (!sticky) statusTimer = setTimeout(hideStatus, 7000);
  }

  function hideStatus() {
    statusLine.hidden = true;
  }

  // ---- the bot's HTML, safely -----------------------------------------------------------------------

  const TAGS = new Set(["B", "STRONG", "I", "EM", "U", "INS", "S", "STRIKE", "DEL", "CODE", "PRE", "A", "BLOCKQUOTE",
    "TG-SPOILER", "SPAN"]);
  const DROP = new Set(["SCRIPT", "STYLE", "TEMPLATE", "IFRAME", "OBJECT", "NOSCRIPT"]);
  const SAFE_URL = /^https?:\/\//i;

  function richText(source) {
    // A document made by DOMParser is inert: its scripts never run and its images never load.
    const parsed = new DOMParser().parseFromString(source, "text/html");
    const out = document.createDocumentFragment();
    copyNodes(parsed.body, out);
    return out;
  }

  const COMMAND = /(^|[\s(«"])(\/[a-z][a-z0-9_]{0,31})(?![\w/])/g;

  // A "/command" in the bot's text is a button that sends it, as on Telegram.
  function commandsIn(text) {
    const out = document.createDocumentFragment();
    let last = 0;
    for (const match of text.matchAll(COMMAND)) {
      const at = match.index + match[1].length;
      out.append(document.createTextNode(text.slice(last, at)));
      const link = element("button", "command", match[2]);
      link.type = "button";
      link.addEventListener("click", () => sendText(match[2]));
      out.append(link);
      last = at + match[2].length;
    }
    out.append(document.createTextNode(text.slice(last)));
    return out;
  }

  function copyNodes(from, to) {
    for (const node of from.childNodes) {
      if (node.nodeType === Node.TEXT_NODE) {
        to.append(to.closest && to.closest("a, code, pre") ? document.createTextNode(node.data) : commandsIn(node.data));
      } else if (node.nodeType === Node.ELEMENT_NODE && !DROP.has(node.tagName)) {
        if (!TAGS.has(node.tagName)) {
          copyNodes(node, to); // an unknown tag: keep its text only
          continue;
        }
        let el;
        if (node.tagName === "TG-SPOILER" || (node.tagName === "SPAN" && node.className === "tg-spoiler")) {
          el = document.createElement("span");
          el.className = "spoiler";
          el.tabIndex = 0;
        } else if (node.tagName === "A") {
          const href = node.getAttribute("href") || "";
          el = document.createElement(SAFE_URL.test(href) ? "a" : "span");
          if (SAFE_URL.test(href)) {
            el.href = href;
            el.target = "_blank";
            el.rel = "noopener noreferrer";
          }
        } else if (node.tagName === "SPAN") {
          copyNodes(node, to); // a span that is not a spoiler: its text only
          continue;
        } else {
          el = document.createElement(node.tagName.toLowerCase());
        }
        copyNodes(node, el);
        to.append(el);
      }
    }
  }

  // ---- messages -------------------------------------------------------------------------------------

  function element(tag, className, text) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function size(bytes) {
    return bytes >= 1048576 ? (bytes / 1048576).toFixed(1) + " MB" : Math.max(1, Math.round(bytes / 1024)) + " KB";
  }

  // A picture in the chat: tapped, it opens full size; once loaded, the log stays at the bottom if it was there.
  function picture(url, alt) {
    const img = element("img", "photo");
    img.src = url;
    img.alt = alt;
    img.addEventListener("load", () => {
      if (log.dataset.stuck) toBottom();
    });
    img.addEventListener("click", () => openViewer(url, alt));
    return img;
  }

  const timeFormat = new Intl.DateTimeFormat("vi-VN", { hour: "2-digit", minute: "2-digit" });
  const dayFormat = new Intl.DateTimeFormat("vi-VN", { day: "2-digit", month: "2-digit", year: "numeric" });

  function stamp(message) {
    const at = message.at ? new Date(message.at) : null;
    if (!at || isNaN(at)) return null;
    const time = element("time", "time", timeFormat.format(at));
    time.dateTime = message.at;
    return time;
  }

  function bubble(message) {
    const box = element("div", "bubble");
    const time = stamp(message);
    if (message.from === "me") {
      if (message.text != null) box.append(element("div", "body", message.text));
      if (message.photo) box.append(picture(message.photo.url, t("web.photo_alt")));
      if (message.voice) {
        const audio = element("audio", "voice");
        audio.controls = true;
        audio.src = message.voice.url;
        box.append(audio);
      }
      if (message.document) box.append(element("div", "document", "📎 " + message.document.name));
      if (message.location) box.append(element("div", "document", "📍 " + t("web.location_sent")));
      if (time) box.append(time);
      return box;
    }
    if (message.photo && /^image\/(jpeg|png|webp|gif)$/.test(message.photo.mime)) {
      box.append(picture(message.photo.url, message.photo.name));
    }
    const body = element("div", "body");
    if (message.html != null) body.append(richText(message.html));
    else body.textContent = message.text || "";
    box.append(body);
    if (message.document) {
      const doc = message.document;
      if (/^image\/(jpeg|png|webp)$/.test(doc.mime)) box.append(picture(doc.url, doc.name));
      const link = element("a", "document");
      link.href = doc.url;
      link.download = doc.name;
      link.append(element("span", "", "⬇"), element("span", "", `${t("web.download")}: ${doc.name} `),
        element("small", "", `(${size(doc.size)})`));
      box.append(link);
    }
    if (message.options && message.options.length) {
      const keyboard = element("div", "keyboard");
      for (const row of message.options) {
        const line = element("div", "row");
        for (const option of row) {
          if (option.url) {
            if (!SAFE_URL.test(option.url)) continue;
            const a = element("a", "option", option.label);
            a.href = option.url;
            a.target = "_blank";
            a.rel = "noopener noreferrer";
            line.append(a);
          } else {
            const button = element("button", "option", option.label);
            button.type = "button";
            if (message.chosen === option.data) {
              button.classList.add("used"); // pressed already: still usable, as on Telegram, but shown as used
              button.setAttribute("aria-pressed", "true");
            }
            button.addEventListener("click", () => choose(option.data, message.id, button));
            line.append(button);
          }
        }
        keyboard.append(line);
      }
      box.append(keyboard);
    }
    if (time) box.append(time);
    return box;
  }

  function dayOf(message) {
    const at = message.at ? new Date(message.at) : null;
    return at && !isNaN(at) ? dayFormat.format(at) : "";
  }

  function dayLabel(day) {
    const today = dayFormat.format(new Date());
    const yesterday = dayFormat.format(new Date(Date.now() - 86400000));
    return day === today ? t("web.today") : day === yesterday ? t("web.yesterday") : day;
  }

  // ---- scrolling: follow new messages only when the person is at the bottom ---------------------------

  function atBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  }

  function toBottom() {
    log.scrollTop = log.scrollHeight;
    log.dataset.stuck = "1";
    newMarker.hidden = true;
  }

  log.addEventListener("scroll", () => {
    if (atBottom()) {
      log.dataset.stuck = "1";
      newMarker.hidden = true;
    } else {
      delete log.dataset.stuck;
    }
  });
  newMarker.addEventListener("click", toBottom);

  // ---- a picture full size ----------------------------------------------------------------------------

  function openViewer(url, alt) {
    const viewer = $("viewer");
    const img = viewer.querySelector("img");
    img.src = url;
    img.alt = alt;
    viewer.hidden = false;
    viewer.querySelector("button").focus();
  }

  $("viewer").addEventListener("click", () => {
    $("viewer").hidden = true;
  });

  // `live`: a message that just arrived, not one of the history shown when the chat opens.
  function show(event, live = true) {
    if (event.type === "commands") {
      renderCommands(event.commands);
      setLanguage(event.language);
      return;
    }
    if (event.type !== "message") return;
    const seen = state.versions.get(event.id);
    if (seen !== undefined && seen >= event.v) return;
    state.versions.set(event.id, event.v);
    let row = document.getElementById("m-" + event.id);
    if (row) {
      row.replaceChildren(bubble(event)); // an edit: the same message, in place
      return;
    }
    const follow = log.dataset.stuck !== undefined || event.from === "me";
    const day = dayOf(event);
    if (day && day !== log.dataset.day) {
      log.dataset.day = day;
      log.append(element("div", "day", dayLabel(day)));
    }
    if (event.from !== "me") {
      state.asked = event.limit || null;
      composed();
    }
    row = element("div", "msg " + (event.from === "me" ? "me" : "bot"));
    row.id = "m-" + event.id;
    row.append(bubble(event));
    log.append(row);
    if (follow) toBottom();
    else if (live) newMarker.hidden = false; // someone reading older messages is not pulled down
    if (live && document.hidden && event.from !== "me") {
      state.unread += 1;
      renderTitle();
    }
  }

  // ---- talking to the server ------------------------------------------------------------------------

  async function startSession() {
    let response;
    try {
      response = await fetch("/api/session", { method: "POST", headers: { "X-Danvan": "1" }, credentials: "same-origin" });
    } catch {
      showStatus(t("web.offline") || "…", "error", true);
      throw new Error("offline");
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      showStatus(data.message || t("web.error"), "error", true);
      throw new Error(data.error || "session");
    }
    Object.assign(state, {
      csrf: data.csrf, texts: data.texts, operator: data.operator, mode: data.mode, persona: data.persona,
      personas: data.personas, campaigns: data.campaigns, limits: data.limits, view: data.view, views: data.views,
    });
    state.lang = data.language;
    applyTexts();
    hideStatus();
  }

  async function post(path, body, raw = false, retried = false, extra = {}) {
    const headers = { "X-CSRF-Token": state.csrf, ...extra };
    if (raw) headers["Content-Type"] = body.type || "application/octet-stream";
    else headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method: "POST", headers, credentials: "same-origin", body: raw ? body : JSON.stringify(body),
      });
    } catch {
      showStatus(t("web.error"));
      return null;
    }
    const data = await response.json().catch(() => ({}));
    if ((response.status === 401 || response.status === 403) && !retried) {
      // The server restarted or the session expired: open (or resume) a session and try once more.
      try {
        await startSession();
        await openChat();
      } catch {
        return null;
      }
      return post(path, body, raw, true, extra);
    }
    if (!response.ok) {
      showStatus(data.message || t("web.error"));
      return null;
    }
    for (const message of data.messages || []) show(message);
    setLanguage(data.language);
    return data;
  }

  async function loadHistory() {
    const response = await fetch("/api/history", { credentials: "same-origin" });
    if (!response.ok) throw new Error(String(response.status));
    return response.json();
  }

  async function openChat() {
    let history;
    try {
      history = await loadHistory();
    } catch {
      await startSession();
      history = await loadHistory();
    }
    // A reconnect (the server restarted, the network came back) adds what is new and never empties the log;
    // only another chat (a persona, a view) replaces it.
    const chat = history.persona + "/" + history.view;
    if (chat !== state.chat) {
      state.chat = chat;
      log.replaceChildren();
      delete log.dataset.day;
      state.versions.clear();
      log.dataset.stuck = "1";
      input.value = localStorage.getItem(draftKey()) || "";
      composed();
    }
    for (const message of history.messages) show(message, false);
    renderCommands(history.commands);
    setLanguage(history.language);
    if (history.view !== state.view) {
      state.view = history.view; // switched in another tab
      renderView();
    }
    listen();
    return history;
  }

  function listen() {
    if (state.events) state.events.close();
    clearTimeout(state.reconnect);
    const events = new EventSource("/api/events");
    state.events = events;
    events.onmessage = (e) => {
      try {
        show(JSON.parse(e.data));
      } catch {
        /* a malformed event is ignored */
      }
    };
    events.onopen = () => {
      if (statusLine.dataset.offline) {
        delete statusLine.dataset.offline;
        hideStatus();
      }
    };
    events.onerror = () => {
      statusLine.dataset.offline = "1";
      showStatus(t("web.offline"), "info", true);
      if (events.readyState === EventSource.CLOSED) {
        // Refused (the server restarted and forgot the session): resume it, then listen again.
        state.reconnect = setTimeout(() => startSession().then(openChat).catch(() => listen()), 3000);
      }
    };
  }

  // Each message carries an id of its own, kept when the post is retried, so the bot handles it once.
  function messageId() {
    const bytes = crypto.getRandomValues(new Uint8Array(12));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function sendText(text) {
    if (text.length > state.limits.text) {
      showStatus(t("web.too_long", { max: state.limits.text }));
      return false;
    }
    return (await post("/api/message", { text, id: messageId() })) !== null;
  }

  async function choose(data, ref, button) {
    button.classList.add("busy");
    button.disabled = true;
    try {
      await post("/api/message", { choice: data, ref, id: messageId() });
    } finally {
      button.classList.remove("busy");
      button.disabled = false;
    }
  }

  // ---- commands, personas, campaigns ----------------------------------------------------------------

  function renderCommands(commands) {
    commandsBox.replaceChildren();
    for (const { command, text } of commands || []) {
      const button = element("button");
      button.type = "button";
      button.append(element("b", "", "/" + command), document.createTextNode(" — " + text));
      button.addEventListener("click", () => {
        toggleCommands(false);
        sendText("/" + command);
      });
      commandsBox.append(button);
    }
  }

  function toggleCommands(open) {
    commandsBox.hidden = !open;
    commandsToggle.setAttribute("aria-expanded", String(open));
  }

  function renderPersonas() {
    if (!personaSelect) return;
    personaSelect.replaceChildren();
    for (const key of state.personas) {
      const option = element("option", "", t("demo.persona_" + key));
      option.value = key;
      personaSelect.append(option);
    }
    personaSelect.value = state.persona;
  }

  function renderCampaigns() {
    const list = $("campaigns");
    if (!list) return;
    list.replaceChildren();
    for (const campaign of state.campaigns) {
      const link = element("a", "", campaign.title[state.lang] || campaign.title.vi);
      link.href = "/?start=c_" + encodeURIComponent(campaign.code);
      const item = element("li");
      item.append(link);
      list.append(item);
    }
  }

  // The demo's text-only view: the same bot as on Zalo (no buttons, no formatting), answered by typing.
  function renderView() {
    if (!textView) return;
    const textOnly = state.view === "webtext";
    textView.closest("label").hidden = state.views.length < 2;
    textView.checked = textOnly;
    $("text-view-hint").hidden = !textOnly;
    document.querySelector(".demo-tools").hidden = textOnly; // the personas are people of the web chat
    commandsToggle.hidden = textOnly; // Zalo has no command menu: people type words
    if (textOnly) toggleCommands(false);
  }

  async function switchView() {
    const view = textView.checked ? "webtext" : "web";
    const answer = await post("/api/view", { view });
    if (!answer) {
      textView.checked = state.view === "webtext";
      return;
    }
    Object.assign(state, { view: answer.view, persona: answer.persona });
    renderPersonas();
    renderView();
    const history = await openChat();
    if (history.messages.length === 0) await sendText("/start");
    input.focus();
  }

  async function switchPersona() {
    const key = personaSelect.value;
    const answer = await post("/api/persona", { persona: key });
    if (!answer) {
      personaSelect.value = state.persona;
      return;
    }
    state.persona = key;
    const history = await openChat();
    if (history.messages.length === 0) await sendText("/start");
  }

  // ---- the composer ---------------------------------------------------------------------------------

  // What is typed and not sent yet is kept in the browser, per chat, across a reload.
  function draftKey() {
    return "danvan.draft." + state.chat;
  }

  function saveDraft() {
    try {
      if (input.value) localStorage.setItem(draftKey(), input.value);
      else localStorage.removeItem(draftKey());
    } catch {
      /* storage full or disabled: the draft is only on the page */
    }
  }

  // The counter shows once a text nears the limit; a longer text is refused before sending and stays in the box.
  function limit() {
    return Math.min(state.limits.text, state.asked || Infinity);
  }

  function composed() {
    const length = input.value.length;
    const max = limit();
    counter.hidden = length < max * 0.8;
    counter.textContent = t("web.counter", { length, max });
    counter.classList.toggle("over", length > max);
    $("composer").classList.toggle("typing", length > 0); // the voice and location buttons give the text room
    autosize();
  }

  $("composer").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    if (text.length > limit()) {
      showStatus(t("web.too_long", { max: limit() }));
      return;
    }
    input.value = "";
    composed();
    if (await sendText(text)) {
      saveDraft();
    } else if (!input.value) {
      input.value = text; // refused: kept, so nothing typed is lost
    }
    composed();
    input.focus();
  });

  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $("composer").requestSubmit();
    }
  });

  function autosize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 140) + "px";
  }
  input.addEventListener("input", () => {
    composed();
    saveDraft();
  });

  const MAX_SIDE = 2560; // pixels: a phone's 12-megapixel photo is shrunk before it is sent

  // Redrawn on a canvas (which also drops the photo's EXIF, GPS included) and sent as JPEG, when it is larger.
  async function shrink(file) {
    let bitmap;
    try {
      bitmap = await createImageBitmap(file);
    } catch {
      return file; // not an image the browser can read: the server says what is wrong
    }
    const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
    if (scale === 1 && file.size < 1048576) return file;
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(bitmap.width * scale);
    canvas.height = Math.round(bitmap.height * scale);
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
    return blob || file;
  }

  async function upload(file, name) {
    if (file.size > state.limits.upload) {
      showStatus(t("web.photo_too_large", { max: Math.round(state.limits.upload / 1048576) }));
      return;
    }
    showStatus(t("web.sending"), "info");
    const extra = name ? { "X-File-Name": encodeURIComponent(name) } : {};
    if (await post("/api/upload", file, true, false, extra)) hideStatus();
  }

  $("photo").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    e.target.value = "";
    if (!file) return;
    if (file.type.startsWith("image/")) await upload(await shrink(file));
    else await upload(file, file.name); // a document
  });

  // A voice note: the first tap records, the second sends.
  const recordButton = $("record");
  let recorder = null;
  // Each is offered only where the browser can do it, which is only on a secure page (HTTPS, or this machine):
  // elsewhere a tap could only end in an apology.
  recordButton.hidden = !(window.isSecureContext && window.MediaRecorder && navigator.mediaDevices?.getUserMedia);
  $("locate").hidden = !(window.isSecureContext && navigator.geolocation);

  recordButton.addEventListener("click", async () => {
    if (recorder) {
      recorder.stop();
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch {
      showStatus(t("web.no_microphone"));
      return;
    }
    const type = ["audio/webm", "audio/ogg", "audio/mp4"].find((m) => MediaRecorder.isTypeSupported(m)) || "";
    const chunks = [];
    recorder = new MediaRecorder(stream, type ? { mimeType: type } : {});
    recorder.addEventListener("dataavailable", (e) => chunks.push(e.data));
    recorder.addEventListener("stop", async () => {
      stream.getTracks().forEach((track) => track.stop());
      recorder = null;
      recordButton.classList.remove("recording");
      hideStatus();
      const blob = new Blob(chunks, { type: (type || chunks[0]?.type || "audio/webm").split(";")[0] });
      if (blob.size) await upload(blob);
    });
    recorder.start();
    recordButton.classList.add("recording");
    showStatus(t("web.recording"), "info", true);
  });

  $("locate").addEventListener("click", () => {
    navigator.geolocation.getCurrentPosition(
      (position) => post("/api/message", {
        location: { latitude: position.coords.latitude, longitude: position.coords.longitude }, id: messageId(),
      }),
      () => showStatus(t("web.no_location")),
      { enableHighAccuracy: true, timeout: 15000 },
    );
  });

  commandsToggle.addEventListener("click", () => toggleCommands(commandsBox.hidden));
  if (personaSelect) personaSelect.addEventListener("change", switchPersona);
  if (textView) textView.addEventListener("change", switchView);

  // ---- start ----------------------------------------------------------------------------------------

  async function main() {
    const start = new URLSearchParams(location.search).get("start");
    if (start !== null) history.replaceState(null, "", location.pathname); // a reload must not repeat it
    try {
      await startSession();
    } catch {
      return;
    }
    showStatus(t("web.connecting"), "info", true);
    const opened = await openChat();
    hideStatus();
    if (start !== null && /^[A-Za-z0-9_-]{1,64}$/.test(start)) await sendText("/start " + start);
    else if (opened.messages.length === 0) await sendText("/start");
  }

  main();
})();
