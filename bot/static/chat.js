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
    document.title = (state.mode === "demo" ? t("demo.tag") + " · " : "") + t("web.title", values);
    renderPersonas();
    renderCampaigns();
    renderView();
  }

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

  function copyNodes(from, to) {
    for (const node of from.childNodes) {
      if (node.nodeType === Node.TEXT_NODE) {
        to.append(document.createTextNode(node.data));
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

  function bubble(message) {
    const box = element("div", "bubble");
    if (message.from === "me") {
      if (message.text != null) box.append(element("div", "body", message.text));
      if (message.photo) {
        const img = element("img", "photo");
        img.src = message.photo.url;
        img.alt = t("web.photo_alt");
        box.append(img);
      }
      return box;
    }
    if (message.photo && /^image\/(jpeg|png|webp|gif)$/.test(message.photo.mime)) {
      const img = element("img", "photo");
      img.src = message.photo.url;
      img.alt = message.photo.name;
      box.append(img);
    }
    const body = element("div", "body");
    if (message.html != null) body.append(richText(message.html));
    else body.textContent = message.text || "";
    box.append(body);
    if (message.document) {
      const doc = message.document;
      if (/^image\/(jpeg|png|webp)$/.test(doc.mime)) {
        const img = element("img", "photo");
        img.src = doc.url;
        img.alt = doc.name;
        box.append(img);
      }
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
            button.addEventListener("click", () => choose(option.data, message.id, button));
            line.append(button);
          }
        }
        keyboard.append(line);
      }
      box.append(keyboard);
    }
    return box;
  }

  function show(event) {
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
    row = element("div", "msg " + (event.from === "me" ? "me" : "bot"));
    row.id = "m-" + event.id;
    row.append(bubble(event));
    log.append(row);
    log.scrollTop = log.scrollHeight;
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

  async function post(path, body, raw = false, retried = false) {
    const headers = { "X-CSRF-Token": state.csrf };
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
      return post(path, body, raw, true);
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
    log.replaceChildren();
    state.versions.clear();
    for (const message of history.messages) show(message);
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

  $("composer").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    input.value = "";
    autosize();
    if (!(await sendText(text))) input.value = text; // kept, so nothing typed is lost
    autosize();
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
  input.addEventListener("input", autosize);

  $("photo").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    e.target.value = "";
    if (!file) return;
    if (file.size > state.limits.upload) {
      showStatus(t("web.photo_too_large", { max: Math.round(state.limits.upload / 1048576) }));
      return;
    }
    showStatus(t("web.sending"), "info");
    if (await post("/api/upload", file, true)) hideStatus();
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
