// imkit's web page (issue 16): the chat over a WebSocket at /ws, speaking the JSON
// Lines vocabulary of docs/protocol.md, one JSON object per text message.
//
// Rules this file keeps:
// * Every name and text from the server is put in the page with textContent (through
//   el() below), never as HTML, so `<img src=x onerror=…>` is shown, not run.
// * No request to any other host: no CDN, no fonts, no analytics.
// * Replies are matched to requests by their `id` (public messages' `ok` comes only
//   after the message is stored, so other replies may overtake it).
// * Rooms (issue 28, docs/rooms.md): the lobby is the public timeline ("Everyone");
//   every other room the user is in is a conversation of its own, keyed by ROOM and the
//   room's name folded, so that no user's name can be mistaken for it.
"use strict";

(function () {
  // ---------------------------------------------------------------------------------
  // Constants

  // After these bye reasons (and a lost connection) the page reconnects by itself: the
  // server went away and will be back. After any other reason it waits for the user,
  // so that two tabs logged in to one account do not take the account from each other
  // forever (`replaced`), and a kicked or idle user is not silently put back.
  const AUTO_RECONNECT = new Set(["shutdown", "unavailable", "lost"]);
  const BACKOFF_FIRST_MS = 1000;
  const BACKOFF_MAX_MS = 30000;
  const HISTORY_PAGE = 50;
  const PUBLIC = ""; // the key of the public conversation (the lobby)
  const ROOM = "\u0001"; // what begins the key of a room's conversation (no name can)
  const DEFAULT_LOBBY = "#lobby"; // `imkit serve --lobby`'s default

  // What each bye reason means, in the user's words; the server's own sentence is
  // shown after it (it may carry details: a kick's reason, a ban's end).
  const REASONS = {
    idle: "You were disconnected after being idle too long.",
    kicked: "An administrator removed you from the chat.",
    shutdown: "The server is shutting down.",
    slow_consumer: "You were disconnected: messages could not reach you fast enough.",
    server_full: "The server is full.",
    unauthorized: "The chat password was wrong or missing.",
    banned: "You are banned from this chat.",
    replaced: "You logged in to your account from somewhere else.",
    account_removed: "Your account was removed by an administrator.",
    data_lost: "The chat's server lost its data, your account with it.",
    login_required: "This chat needs you to log in to an account.",
    unavailable: "The chat is unavailable for a moment.",
    too_many_connections: "Too many connections from your address.",
    lost: "The connection to the server was lost.",
  };

  // ---------------------------------------------------------------------------------
  // State

  const state = {
    ws: null, // the current WebSocket
    joined: false, // a welcome came on this socket
    helloSent: false, // our hello went out on this socket
    byeReason: null, // the reason of the bye received on this socket, if any
    lastText: null, // a text (non-JSON) line, such as a refusal sent before any hello
    features: loadFeatures(),
    // What the next hello sends: kept in memory only (never stored) so that an
    // automatic reconnect after a restart joins the same way.
    credentials: null, // {name} or {login: {name, password}}
    chatPassword: null,
    me: null, // our current name
    account: null, // our account, when logged in
    users: new Map(), // name → {name, addr, account}
    conversations: new Map(), // key → conversation (see makeConversation)
    active: PUBLIC,
    lobby: DEFAULT_LOBBY, // the lobby's name: learnt from `rooms` and the lobby's messages
    roomListAsked: false, // a `rooms` request is on its way
    nextId: 1,
    pending: new Map(), // request id → function(reply)
    backoffMs: BACKOFF_FIRST_MS,
    retryTimer: null,
    countdownTimer: null,
  };

  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------------------------
  // Small DOM helpers: the only way this file creates content.

  /** An element with a class and a text, both optional; text goes in as textContent. */
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function setError(id, text) {
    $(id).textContent = text || "";
  }

  // ---------------------------------------------------------------------------------
  // Time: the server sends UTC (ISO-8601); people read their own local time.

  function formatTime(iso) {
    const when = new Date(iso);
    if (isNaN(when.getTime())) return "";
    const now = new Date();
    const sameDay = when.toDateString() === now.toDateString();
    const time = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (sameDay) return time;
    return when.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + time;
  }

  function timeElement(iso) {
    const node = el("time", "when", formatTime(iso));
    node.dateTime = iso;
    const when = new Date(iso);
    if (!isNaN(when.getTime())) node.title = when.toLocaleString();
    return node;
  }

  // ---------------------------------------------------------------------------------
  // Features, remembered between visits so that the login form can be offered before
  // the first welcome of a visit (the hello is what carries the login).

  function loadFeatures() {
    try {
      return JSON.parse(localStorage.getItem("imkit.features") || "[]");
    } catch (e) {
      return [];
    }
  }

  function saveFeatures(features) {
    state.features = Array.isArray(features) ? features : [];
    try {
      localStorage.setItem("imkit.features", JSON.stringify(state.features));
    } catch (e) {
      // Storage may be disabled (private browsing): the page still works.
    }
  }

  function hasFeature(name) {
    return state.features.includes(name);
  }

  // ---------------------------------------------------------------------------------
  // The connection

  function wsUrl() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + location.host + "/ws";
  }

  /** Open a new WebSocket; when we know how to join, the hello goes out at once. */
  function connect() {
    clearRetry();
    if (state.ws) detach(state.ws);
    const ws = new WebSocket(wsUrl());
    state.ws = ws;
    state.joined = false;
    state.helloSent = false;
    state.byeReason = null;
    state.lastText = null;
    state.pending.clear();
    state.roomListAsked = false;
    setStatus("connecting…");
    ws.onopen = () => {
      setStatus("connected");
      if (state.credentials) sendHello();
    };
    ws.onmessage = (event) => onFrame(event.data);
    ws.onclose = (event) => onClose(ws, event);
  }

  /** Forget a socket we no longer want: its late events must not touch the page. */
  function detach(ws) {
    ws.onopen = ws.onmessage = ws.onclose = null;
    try {
      ws.close();
    } catch (e) {
      // already closed
    }
  }

  function isOpen() {
    return state.ws && state.ws.readyState === WebSocket.OPEN;
  }

  /** Send a request; `onReply` gets the reply that carries the same id. */
  function request(fields, onReply) {
    const id = state.nextId++;
    if (onReply) state.pending.set(id, onReply);
    state.ws.send(JSON.stringify(Object.assign({ id: id }, fields)));
    return id;
  }

  function sendHello() {
    const hello = { type: "hello", v: 1 };
    if (state.chatPassword) hello.password = state.chatPassword;
    Object.assign(hello, state.credentials);
    state.helloSent = true;
    setStatus("joining…");
    request(hello, onHelloReply);
  }

  function onFrame(data) {
    if (typeof data !== "string") return; // the server sends text only
    let event;
    try {
      event = JSON.parse(data);
    } catch (e) {
      // A text line (a refusal sent before the hello was read): keep it as the reason.
      state.lastText = data.trim();
      return;
    }
    if (!event || typeof event !== "object") return;
    if (event.id !== undefined && state.pending.has(event.id)) {
      const onReply = state.pending.get(event.id);
      state.pending.delete(event.id);
      onReply(event);
      return;
    }
    onEvent(event);
  }

  /** Events that are not replies to a request of ours. */
  function onEvent(event) {
    switch (event.type) {
      case "message":
        addMessage(event, { live: true });
        break;
      case "presence":
        onPresence(event);
        break;
      case "rename":
        onRename(event);
        break;
      case "joined": // put back in a room at login (a join's own reply has an id)
        onJoined(event);
        break;
      case "join":
        onRoomJoin(event);
        break;
      case "part":
        onRoomPart(event);
        break;
      case "kick":
        onRoomKick(event);
        break;
      case "topic":
        onTopic(event);
        break;
      case "mode":
        onMode(event);
        break;
      case "invite":
        if (event.room) {
          systemLine(PUBLIC, (event.by || "Someone") + " invites you to " + event.room + ".");
        }
        break;
      case "bye":
        state.byeReason = event.reason || "lost";
        state.byeMessage = event.message || "";
        break;
      case "deleted":
      case "edited":
        onAmended(event);
        break;
      case "notice":
        systemLine(PUBLIC, event.message || event.code);
        break;
      case "error":
        // An error without an id of ours (a line the server could not read).
        setError("composer-error", describeError(event));
        break;
      default:
        break; // unknown events are ignored, as the protocol asks
    }
  }

  function onClose(ws, event) {
    if (ws !== state.ws) return;
    state.ws = null;
    const wasJoined = state.joined;
    state.joined = false;
    updateLoginControl();
    let reason = state.byeReason;
    let detail = state.byeMessage || "";
    if (!reason) {
      // No bye: a refusal sent as a text line, or the network went away.
      reason = reasonOfText(state.lastText) || "lost";
      detail = state.lastText || closeDetail(event);
    }
    state.byeMessage = "";
    if (!state.helloSent && (reason === "lost" || reason === "idle")) {
      // Closed before we asked to join (the name prompt stayed open past the idle
      // timeout, or the server is not there yet): nothing was lost. A reconnect keeps
      // knocking with its backoff; on the name prompt the next Join opens a new socket.
      if (state.credentials) {
        scheduleReconnect("lost", REASONS.lost);
      } else {
        setStatus("not connected: the next Join tries again");
      }
      return;
    }
    const line = disconnectLine(reason, detail);
    systemLine(state.active, line, "bye");
    if (state.active !== PUBLIC) systemLine(PUBLIC, line, "bye");
    markUsersUnknown();
    leaveRoomsWithTheConnection();
    if (AUTO_RECONNECT.has(reason) && (wasJoined || state.credentials)) {
      scheduleReconnect(reason, line);
    } else {
      offerReconnect(line, reason);
    }
  }

  /** Refusals sent before any hello come as text lines: recognise the common ones. */
  function reasonOfText(text) {
    if (!text) return null;
    if (/server is full/.test(text)) return "server_full";
    if (/too many/.test(text)) return "too_many_connections";
    if (/unavailable/.test(text)) return "unavailable";
    if (/banned/.test(text)) return "banned";
    return null;
  }

  function closeDetail(event) {
    if (!event || event.code === 1000 || event.code === 1005) return "";
    return "(code " + event.code + (event.reason ? ": " + event.reason : "") + ")";
  }

  function disconnectLine(reason, detail) {
    const words = REASONS[reason] || "Disconnected (" + reason + ").";
    return detail ? words + " " + detail : words;
  }

  // ---------------------------------------------------------------------------------
  // Reconnecting

  /** Reconnect by itself after 1 s, 2 s, 4 s… up to 30 s, with a little jitter so that
   * every page of a restarted server does not knock at the same instant. */
  function scheduleReconnect(reason, line) {
    clearRetry();
    const delay = state.backoffMs * (0.8 + Math.random() * 0.4);
    state.backoffMs = Math.min(state.backoffMs * 2, BACKOFF_MAX_MS);
    let left = Math.ceil(delay / 1000);
    const tell = () => {
      showBanner((line ? line + " " : "") + "Reconnecting in " + left + " s…", "Reconnect now");
      setStatus("disconnected");
    };
    tell();
    state.countdownTimer = setInterval(() => {
      left = Math.max(0, left - 1);
      tell();
    }, 1000);
    state.retryTimer = setTimeout(() => {
      clearRetry();
      showBanner("Reconnecting…", null);
      connect();
    }, delay);
  }

  /** After idle, kicked, replaced…: say why and wait for the user's Reconnect. */
  function offerReconnect(line, reason) {
    clearRetry();
    setStatus("disconnected");
    showBanner(line, "Reconnect");
    if (reason === "unauthorized") {
      // Ask for the chat's password on the next try.
      document.querySelectorAll(".server-password").forEach((n) => show(n, true));
    }
  }

  function clearRetry() {
    clearTimeout(state.retryTimer);
    clearInterval(state.countdownTimer);
    state.retryTimer = state.countdownTimer = null;
  }

  function showBanner(text, buttonLabel) {
    $("banner-text").textContent = text;
    const button = $("reconnect");
    show(button, Boolean(buttonLabel));
    if (buttonLabel) button.textContent = buttonLabel;
    show($("banner"), true);
  }

  function hideBanner() {
    show($("banner"), false);
  }

  function onReconnectClick() {
    state.backoffMs = BACKOFF_FIRST_MS;
    hideBanner();
    if (!state.credentials) {
      showJoin();
      $("guest-name").focus(); // the button that had the focus is hidden now
      connect();
      return;
    }
    connect();
  }

  // ---------------------------------------------------------------------------------
  // Joining

  function onGuestSubmit(event) {
    event.preventDefault();
    const name = $("guest-name").value.trim();
    state.credentials = name ? { name: name } : {};
    rememberName(name);
    joinWith("guest-error");
  }

  function onLoginSubmit(event) {
    event.preventDefault();
    const name = $("login-name").value.trim();
    const password = $("login-password").value;
    state.credentials = { login: { name: name, password: password } };
    rememberName(name);
    joinWith("login-error");
  }

  function joinWith(errorId) {
    setError("guest-error", "");
    setError("login-error", "");
    state.joinErrorId = errorId;
    const pw = $("chat-password");
    if (!pw.hidden && pw.value) state.chatPassword = pw.value;
    state.backoffMs = BACKOFF_FIRST_MS;
    hideBanner();
    if (isOpen() && !state.helloSent) sendHello();
    else connect(); // the hello goes out when it opens
  }

  function onHelloReply(reply) {
    if (reply.type === "welcome") {
      onWelcome(reply);
      return;
    }
    // The hello was refused (name taken, reserved, wrong login…): the connection is
    // online under a default name now, which is not what the user asked for. Close it
    // and let the user try again on a new one.
    const errorId = state.joinErrorId || "guest-error";
    const wanted = state.credentials;
    state.credentials = null;
    state.helloSent = false;
    const ws = state.ws;
    state.ws = null;
    if (ws) detach(ws);
    clearRetry();
    hideBanner();
    showJoin();
    if (reply.code === "name_reserved" || reply.code === "login_required") {
      // The name belongs to an account: offer the login form, name filled in.
      saveFeatures(Array.from(new Set(state.features.concat(["accounts"]))));
      showLoginForm(true);
      if (wanted && wanted.name) $("login-name").value = wanted.name;
      setError("login-error", describeError(reply));
      $("login-password").focus();
    } else {
      setError(errorId, describeError(reply));
      $(errorId === "login-error" ? "login-password" : "guest-name").focus();
    }
    if (reply.code === "unauthorized") {
      document.querySelectorAll(".server-password").forEach((n) => show(n, true));
    }
    connect();
  }

  function onWelcome(welcome) {
    $("login-password").value = ""; // kept in the tab's memory only, for a reconnect
    state.joined = true;
    state.backoffMs = BACKOFF_FIRST_MS;
    state.me = welcome.name;
    state.account = welcome.account || null;
    // A server from before `features` existed had history already.
    saveFeatures(Array.isArray(welcome.features) ? welcome.features : ["history"]);
    // Reconnect as this name from now on (a guest that left the name empty keeps its
    // address name, which is no one's to ask for).
    if (!state.credentials.login && state.me && !state.me.includes(":")) {
      state.credentials = { name: state.me };
    }
    hideBanner();
    show($("join"), false);
    show($("chat"), true);
    show($("rooms-section"), hasFeature("rooms"));
    setStatus(statusText());
    updateLoginControl();
    loadUsers();
    reloadHistory();
    if (hasFeature("rooms")) {
      loadRoomList();
      rejoinRooms();
    }
    $("text").focus();
  }

  function statusText() {
    if (!state.me) return "connected";
    return "you are " + state.me + (state.account ? " (logged in)" : "");
  }

  function showJoin() {
    show($("chat"), false);
    show($("join"), true);
    closeLaterLogin();
    show($("login-open"), false);
  }

  // ---------------------------------------------------------------------------------
  // Logging in after joining as a guest: a `login` request on the open connection.
  // The server renames the guest to the account's name (a `rename` event, handled like
  // any other) and answers `ok` with `name` and `account`; then the messages kept for
  // the account arrive as ordinary `message` events.

  /** The "Log in" control: for a guest on a server with accounts. */
  function updateLoginControl() {
    // A server from before `features` named "accounts" may have none: no control.
    const offer = state.joined && !state.account && hasFeature("accounts");
    show($("login-open"), offer);
    if (!offer) closeLaterLogin();
  }

  function openLaterLogin() {
    setError("later-error", "");
    show($("account-login"), true);
    const name = $("later-name");
    if (!name.value && state.me && !state.me.includes(":")) name.value = state.me;
    (name.value ? $("later-password") : name).focus();
  }

  function closeLaterLogin() {
    $("later-password").value = ""; // never kept longer than the request needs
    setError("later-error", "");
    show($("account-login"), false);
  }

  function onLaterLoginSubmit(event) {
    event.preventDefault();
    const name = $("later-name").value.trim();
    const password = $("later-password").value;
    if (!isOpen() || !state.joined) {
      setError("later-error", "Not connected: log in again once the page has reconnected.");
      return;
    }
    setError("later-error", "");
    request({ type: "login", name: name, password: password }, (reply) => {
      if (reply.type !== "ok") {
        // login_failed, too_many_attempts, unavailable…: the form stays, password cleared.
        $("later-password").value = "";
        setError("later-error", describeError(reply));
        $("later-password").focus();
        return;
      }
      onLoggedIn(reply, password);
    });
  }

  function onLoggedIn(reply, password) {
    state.me = reply.name || state.me;
    state.account = reply.account || reply.name || null;
    // In the tab's memory only, as a first-screen login is: an automatic reconnect
    // after a restart logs in again.
    state.credentials = { login: { name: state.account, password: password } };
    rememberName(state.account);
    const me = state.users.get(state.me);
    if (me) me.account = state.account;
    closeLaterLogin();
    updateLoginControl();
    setStatus(statusText());
    renderUsers();
    systemLine(PUBLIC, "You logged in to the account " + state.account + ".");
    // Private conversations now have a history kept by the server: ask again.
    for (const conv of state.conversations.values()) {
      if (conv.key === PUBLIC || conv.room) continue;
      conv.historyAsked = false;
      if (conv.key === state.active) loadPrivateHistory(conv);
    }
    renderConversations();
    $("text").focus();
  }

  function showLoginForm(visible) {
    show($("login-form"), visible);
  }

  function rememberName(name) {
    try {
      if (name) localStorage.setItem("imkit.name", name);
    } catch (e) {
      // storage disabled
    }
  }

  function setStatus(text) {
    $("status").textContent = text;
  }

  /** An error reply in words: the server's sentence, with its code for searching. */
  function describeError(reply) {
    const message = reply.message || "refused";
    return reply.code ? message + " (" + reply.code + ")" : message;
  }

  // ---------------------------------------------------------------------------------
  // The online list

  function loadUsers() {
    request({ type: "who" }, (reply) => {
      if (reply.type !== "users") return;
      state.users.clear();
      for (const user of reply.users || []) state.users.set(user.name, user);
      renderUsers();
    });
  }

  function onPresence(event) {
    if (event.status === "online") {
      state.users.set(event.name, { name: event.name, addr: event.addr, account: null });
    } else {
      state.users.delete(event.name);
      // Offline is told once, to the lobby and to the rooms: it leaves them all.
      for (const conv of rooms()) conv.members.delete(event.name);
      renderMembers();
    }
    renderUsers();
    renderConversations();
  }

  function onRename(event) {
    const user = state.users.get(event.old);
    state.users.delete(event.old);
    state.users.set(event.new, Object.assign({}, user || {}, { name: event.new, addr: event.addr }));
    for (const conv of rooms()) {
      const member = conv.members.get(event.old);
      if (!member) continue;
      conv.members.delete(event.old);
      conv.members.set(event.new, Object.assign({}, member, { name: event.new, addr: event.addr }));
    }
    renderMembers();
    if (event.old === state.me) {
      state.me = event.new;
      setStatus(statusText());
      if (event.reason) {
        systemLine(PUBLIC, "Your name is now " + event.new + " (" + event.reason + ").");
      }
    } else {
      renameConversation(event.old, event.new);
    }
    renderUsers();
  }

  /** After a disconnect the list is stale: keep it, greyed, until the next `who`. */
  function markUsersUnknown() {
    $("users").classList.add("stale");
    $("members").classList.add("stale");
  }

  function renderUsers() {
    const list = $("users");
    list.classList.remove("stale");
    list.replaceChildren();
    for (const user of state.users.values()) list.append(userItem(user));
    $("online-count").textContent = "(" + state.users.size + ")";
  }

  /** A person in a list: a button that opens the private conversation (not for us). */
  function userItem(user) {
    const item = el("li");
    if (user.name === state.me) {
      item.append(el("span", "user me", user.name), el("span", "hint", " (you)"));
    } else {
      const button = el("button", "user", user.name);
      button.type = "button";
      button.title = "Write to " + user.name + " privately";
      button.addEventListener("click", () => openConversation(user.name, true));
      item.append(button);
    }
    if (user.account) item.append(el("span", "badge-account", "✓"));
    return item;
  }

  // ---------------------------------------------------------------------------------
  // Conversations: the public one (the lobby), one per room the user is in, and one
  // per person written to or heard from.

  function makeConversation(key, roomName) {
    const log = el("ol", "log");
    log.tabIndex = 0; // so the keyboard can scroll it (and page back through history)
    log.setAttribute("aria-live", "polite");
    log.hidden = true;
    const older = el("button", "older", "Load older messages");
    older.type = "button";
    older.hidden = true;
    const wrap = el("div", "log-wrap");
    wrap.append(older, log);
    wrap.hidden = true;
    const conv = {
      key: key,
      title: key === PUBLIC ? "Everyone" : roomName || key,
      wrap: wrap,
      log: log,
      older: older,
      msgids: new Set(),
      unread: 0,
      more: false,
      loading: false,
      historyAsked: false,
      // A room's (null for the lobby and private conversations):
      room: roomName || null, // its name, as the server spells it
      member: false, // we are in it on this connection
      rejoin: false, // we were in it when the connection went: join again after welcome
      joinKey: null, // the key (password) it was joined with, in memory only
      topic: null,
      members: new Map(), // name → {name, addr, account, operator, voice}
      membersKnown: false, // a `who` answered on this connection
    };
    older.addEventListener("click", () => loadOlder(conv));
    log.addEventListener("scroll", () => {
      if (log.scrollTop < 40) loadOlder(conv);
    });
    $("logs").append(wrap);
    state.conversations.set(key, conv);
    renderConversations();
    return conv;
  }

  function conversation(key) {
    return state.conversations.get(key) || makeConversation(key);
  }

  /** Show conversation KEY; `focus` moves the keyboard to the input. */
  function openConversation(key, focus) {
    const conv = conversation(key);
    state.active = key;
    for (const other of state.conversations.values()) {
      other.wrap.hidden = other !== conv;
      other.log.hidden = other !== conv;
    }
    conv.unread = 0;
    let title = "Everyone";
    if (conv.room) title = conv.room;
    else if (conv.key !== PUBLIC) title = "Private: " + conv.title;
    $("pane-title").textContent = title;
    $("text").placeholder = conv.key === PUBLIC ? "Message everyone" : "Message " + conv.title;
    setError("composer-error", "");
    setError("topic-error", "");
    $("topic-text").value = "";
    if (conv.room) {
      if (conv.member && !conv.historyAsked) loadRoomHistory(conv);
      if (conv.member && !conv.membersKnown) loadMembers(conv);
    } else if (conv.key !== PUBLIC && state.account && !conv.historyAsked) {
      loadPrivateHistory(conv);
    }
    renderRoomInfo();
    renderMembers();
    renderConversations();
    scrollToEnd(conv);
    if (focus) $("text").focus();
  }

  function renameConversation(oldName, newName) {
    const conv = state.conversations.get(oldName);
    if (!conv || state.conversations.has(newName)) return;
    state.conversations.delete(oldName);
    conv.key = conv.title = newName;
    state.conversations.set(newName, conv);
    systemLine(newName, oldName + " is now " + newName + ".");
    if (state.active === oldName) openConversation(newName, false);
    else renderConversations();
  }

  /** The sidebar: Everyone and the private conversations in one list, the rooms in
   * another; each with its unread count. The tab's title shows the total. */
  function renderConversations() {
    const list = $("conversations");
    const roomList = $("rooms");
    list.replaceChildren();
    roomList.replaceChildren();
    let totalUnread = 0;
    for (const conv of state.conversations.values()) {
      const button = el("button", "conv", conv.title);
      button.type = "button";
      if (conv.key === state.active) button.setAttribute("aria-current", "true");
      if (conv.room) {
        if (!conv.member) button.append(el("span", "hint", " (not joined)"));
      } else if (conv.key !== PUBLIC && !state.users.has(conv.key)) {
        button.append(el("span", "hint", " (offline)"));
      }
      if (conv.unread) {
        const mark = el("span", "unread", conv.unread);
        mark.setAttribute("aria-label", conv.unread + " unread");
        button.append(mark);
        totalUnread += conv.unread;
      }
      button.addEventListener("click", () => openConversation(conv.key, true));
      const item = el("li");
      item.append(button);
      (conv.room ? roomList : list).append(item);
    }
    show($("no-rooms"), roomList.childElementCount === 0);
    document.title = (totalUnread ? "(" + totalUnread + ") " : "") + "imkit";
  }

  /** The conversation a message belongs to: private ones by the other person; public
   * ones by their room, the lobby's (or a server's from before rooms) being Everyone. */
  function conversationOf(message) {
    if (message.to !== null && message.to !== undefined) {
      return conversation(message.from === state.me ? message.to : message.from);
    }
    if (!message.room || isLobby(message.room)) return conversation(PUBLIC);
    // The server sends a room's messages to its members only, each after its `joined`:
    // a public message of a room we were not told of is the lobby's (a server started
    // with --lobby: its name, which the welcome does not say, is learnt here).
    const conv = state.conversations.get(roomKey(message.room));
    if (conv) return conv;
    state.lobby = message.room;
    return conversation(PUBLIC);
  }

  /** Put a message in its conversation, in msgid order, once (history and the live
   * event of one message may both arrive). */
  function addMessage(message, opts) {
    const conv = opts.conv || conversationOf(message);
    if (message.msgid) {
      if (conv.msgids.has(message.msgid)) return;
      conv.msgids.add(message.msgid);
    }
    const item = messageItem(message, opts);
    const atEnd = nearEnd(conv.log);
    insertOrdered(conv.log, item, message.msgid);
    if (opts.live) {
      const seen = conv.key === state.active && !document.hidden;
      if (!seen && message.from !== state.me) {
        conv.unread += 1;
        renderConversations();
      }
      if (atEnd || message.from === state.me) scrollToEnd(conv);
    }
  }

  function messageItem(message, opts) {
    const item = el("li", "msg");
    if (message.from === state.me) item.classList.add("mine");
    if (message.msgid) item.dataset.msgid = message.msgid;
    item.append(timeElement(message.time || new Date().toISOString()), " ");
    const from = el("span", "from", message.from);
    if (message.addr) from.title = message.addr;
    item.append(from);
    if (message.account) {
      const check = el("span", "badge-account", "✓");
      check.title = "logged in to the account " + message.account;
      item.append(check);
    }
    if (message.bot) {
      // Posted by a webhook (docs/integrations.md): no person typed it.
      const bot = el("span", "badge-bot", "bot");
      bot.title = "posted by a webhook";
      item.append(bot);
    }
    item.append(el("span", "sep", ": "), el("span", "text", message.text));
    if (message.edited) item.append(editedMark(message.edited));
    if (opts.note) item.append(el("span", "hint", " " + opts.note));
    if (message.msgid && message.from === state.me && state.account && !message.to) {
      item.append(messageActions(message.msgid));
    }
    return item;
  }

  function editedMark(iso) {
    const mark = el("span", "hint edited", " (edited)");
    mark.title = "edited " + formatTime(iso);
    return mark;
  }

  /** Edit and delete, on our own public messages once logged in (an account's only:
   * the server refuses a guest's). Refusals show as the composer's errors. */
  function messageActions(msgid) {
    const actions = el("span", "msg-actions");
    const edit = el("button", "msg-edit", "edit");
    const remove = el("button", "msg-delete", "delete");
    edit.type = remove.type = "button";
    edit.addEventListener("click", function () {
      const item = edit.closest("li");
      const current = item ? item.querySelector(".text").textContent : "";
      const text = window.prompt("Edit your message:", current);
      if (text === null || text === current || !text.trim()) return;
      request({ type: "edit", msgid: msgid, text: text }, onAmendReply);
    });
    remove.addEventListener("click", function () {
      if (!window.confirm("Delete this message for everyone?")) return;
      request({ type: "delete", msgid: msgid }, onAmendReply);
    });
    actions.append(edit, remove);
    return actions;
  }

  function onAmendReply(reply) {
    if (reply.type === "error") setError("composer-error", describeError(reply));
  }

  /** A message deleted or edited (by its author, an operator, an administrator): its
   * line changes in place, wherever it is shown. */
  function onAmended(event) {
    for (const conv of state.conversations.values()) {
      const item = conv.log.querySelector('li[data-msgid="' + CSS.escape(event.msgid) + '"]');
      if (!item) continue;
      const text = item.querySelector(".text");
      for (const old of item.querySelectorAll(".edited, .msg-actions")) {
        if (event.type === "deleted" || old.classList.contains("edited")) old.remove();
      }
      if (event.type === "deleted") {
        item.classList.add("deleted");
        text.textContent = event.by ? "deleted by " + event.by : "deleted by an administrator";
      } else {
        text.textContent = event.text;
        text.after(editedMark(event.edited));
      }
    }
  }

  /** Insert ITEM so that the list stays in msgid order (msgids compare as strings). */
  function insertOrdered(log, item, msgid) {
    if (!msgid) {
      log.append(item);
      return;
    }
    let before = null;
    for (let node = log.lastElementChild; node; node = node.previousElementSibling) {
      const other = node.dataset.msgid;
      if (other && other <= msgid) break;
      if (other) before = node;
    }
    log.insertBefore(item, before);
  }

  /** A line of the page's own (a disconnect, a notice): never a user's HTML either. */
  function systemLine(key, text, kind) {
    const conv = conversation(key);
    const item = el("li", "system" + (kind ? " " + kind : ""));
    item.append(timeElement(new Date().toISOString()), " ", el("span", "text", text));
    conv.log.append(item);
    scrollToEnd(conv);
  }

  function nearEnd(log) {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 60;
  }

  function scrollToEnd(conv) {
    conv.log.scrollTop = conv.log.scrollHeight;
  }

  // ---------------------------------------------------------------------------------
  // Rooms (docs/rooms.md). The page joins with `join`, leaves with `part`, asks a
  // room's members with `who` and its history with `history`, both with `room`; the
  // server tells the members of joins, parts, kicks, topics and modes.

  /** A room's conversation key: its name folded (the server's key folds more: it sends
   * back the room's own spelling, which is what the page shows). */
  function roomKey(name) {
    return ROOM + String(name).normalize("NFKC").toLowerCase();
  }

  function isLobby(name) {
    return roomKey(name) === roomKey(state.lobby);
  }

  function rooms() {
    return Array.from(state.conversations.values()).filter((conv) => conv.room);
  }

  /** The conversation of a room we are told of, or null (events of rooms we are not
   * in are not ours to show). */
  function knownRoom(name) {
    if (!name) return null;
    return state.conversations.get(roomKey(name)) || null;
  }

  function activeConversation() {
    return state.conversations.get(state.active) || conversation(PUBLIC);
  }

  /** `joined`: the reply to our join, or (no id) a room an account is put back in. */
  function onJoined(event) {
    if (!event.room) return null;
    if (isLobby(event.room)) return conversation(PUBLIC);
    const key = roomKey(event.room);
    const conv = state.conversations.get(key) || makeConversation(key, event.room);
    conv.room = conv.title = event.room;
    conv.member = true;
    conv.rejoin = false;
    conv.topic = typeof event.topic === "string" && event.topic ? event.topic : null;
    conv.membersKnown = false;
    loadMembers(conv);
    if (state.active === key) {
      if (!conv.historyAsked) loadRoomHistory(conv);
      renderRoomInfo();
    }
    renderConversations();
    return conv;
  }

  function onRoomJoinSubmit(event) {
    event.preventDefault();
    // "#room" or "#room KEY" (a room's name has no spaces); the # may be left out.
    const words = $("room-name").value.trim().split(/\s+/);
    let name = words[0] || "";
    if (!name) return;
    if (!name.startsWith("#")) name = "#" + name;
    const key = words.slice(1).join(" ");
    if (!isOpen() || !state.joined) {
      setError("room-error", "Not connected: join the room once the page has reconnected.");
      return;
    }
    setError("room-error", "");
    const req = { type: "join", room: name };
    if (key) req.key = key;
    request(req, (reply) => {
      if (reply.type !== "joined") {
        setError("room-error", describeError(reply));
        $("room-name").focus();
        return;
      }
      $("room-name").value = "";
      const conv = onJoined(reply);
      if (!conv) return;
      if (key) conv.joinKey = key;
      openConversation(conv.key, true);
    });
  }

  function onLeaveClick() {
    const conv = activeConversation();
    if (!conv.room) return;
    if (!conv.member) {
      // Not in it (any more): nothing to ask the server.
      removeRoom(conv);
      return;
    }
    if (!isOpen() || !state.joined) {
      setError("composer-error", "Not connected: leave the room once the page has reconnected.");
      return;
    }
    request({ type: "part", room: conv.room }, (reply) => {
      if (reply.type !== "ok" && reply.code !== "not_in_room") {
        setError("composer-error", describeError(reply));
        return;
      }
      // Our own `part` event may have come first and said so already.
      if (state.conversations.get(conv.key) !== conv) return;
      systemLine(PUBLIC, "You left " + conv.room + ".");
      removeRoom(conv);
    });
  }

  /** Forget a room's conversation (left, or removed from it); Everyone is shown if it
   * was. */
  function removeRoom(conv) {
    if (state.conversations.get(conv.key) !== conv) return;
    conv.member = false;
    state.conversations.delete(conv.key);
    conv.wrap.remove();
    if (state.active === conv.key) openConversation(PUBLIC, true);
    else renderConversations();
  }

  function memberOf(event) {
    return {
      name: event.name,
      addr: event.addr || null,
      account: event.account || null,
      operator: false,
      voice: false,
    };
  }

  function onRoomJoin(event) {
    const conv = knownRoom(event.room);
    if (!conv || !event.name) return;
    if (event.name === state.me) return; // our own join: `joined` says it
    conv.members.set(event.name, Object.assign(memberOf(event), conv.members.get(event.name)));
    systemLine(conv.key, event.name + " has joined.");
    renderMembers();
  }

  function onRoomPart(event) {
    const conv = knownRoom(event.room);
    if (!conv || !event.name) return;
    if (event.name === state.me) {
      if (conv.member) {
        systemLine(PUBLIC, "You left " + conv.room + ".");
        removeRoom(conv);
      }
      return;
    }
    conv.members.delete(event.name);
    systemLine(conv.key, event.name + " has left" + (event.reason ? ": " + event.reason : "."));
    renderMembers();
  }

  function onRoomKick(event) {
    const conv = knownRoom(event.room);
    if (!conv || !event.name) return;
    const by = event.by ? " by " + event.by : "";
    const why = event.reason ? ": " + event.reason : ".";
    if (event.name === state.me) {
      systemLine(PUBLIC, "You were removed from " + conv.room + by + why);
      removeRoom(conv);
      return;
    }
    conv.members.delete(event.name);
    systemLine(conv.key, event.name + " was removed" + by + why);
    renderMembers();
  }

  function onTopic(event) {
    const conv = knownRoom(event.room);
    if (!conv) return;
    conv.topic = event.topic || null;
    if (event.by) {
      systemLine(
        conv.key,
        conv.topic ? event.by + " set the topic: " + conv.topic : event.by + " cleared the topic.",
      );
    }
    renderRoomInfo();
  }

  /** Modes: the operators and voices among the members follow `+o`/`-o`, `+v`/`-v`. */
  function onMode(event) {
    const conv = knownRoom(event.room);
    if (!conv || typeof event.changes !== "string") return;
    const args = Array.isArray(event.args) ? event.args.slice() : [];
    let sign = "+";
    for (const letter of event.changes) {
      if (letter === "+" || letter === "-") {
        sign = letter;
        continue;
      }
      const takesArg = "ovbk".includes(letter) || (letter === "l" && sign === "+");
      const arg = takesArg ? args.shift() : undefined;
      if ((letter === "o" || letter === "v") && arg !== undefined) {
        const member = conv.members.get(arg);
        if (member) member[letter === "o" ? "operator" : "voice"] = sign === "+";
      }
    }
    const shown = [event.changes].concat(event.args || []).join(" ");
    systemLine(conv.key, (event.by || "The server") + " set mode " + shown + ".");
    renderMembers();
  }

  /** `rooms`: the lobby first (the page learns its name there: the welcome does not
   * say it), then the rooms the user may see, offered as the join field's suggestions. */
  function loadRoomList() {
    if (!isOpen() || state.roomListAsked) return;
    state.roomListAsked = true;
    request({ type: "rooms" }, (reply) => {
      state.roomListAsked = false;
      if (reply.type !== "rooms" || !Array.isArray(reply.rooms) || !reply.rooms.length) return;
      if (typeof reply.rooms[0].room === "string") state.lobby = reply.rooms[0].room;
      const options = $("room-suggestions");
      options.replaceChildren();
      for (const info of reply.rooms.slice(1)) {
        const option = el("option");
        option.value = info.room;
        const members = info.members === 1 ? "1 member" : info.members + " members";
        option.label = info.topic ? members + ": " + info.topic : members;
        options.append(option);
      }
    });
  }

  function loadMembers(conv) {
    if (!isOpen() || !conv.member) return;
    request({ type: "who", room: conv.room }, (reply) => {
      if (reply.type !== "users" || state.conversations.get(conv.key) !== conv) return;
      conv.members.clear();
      for (const user of reply.users || []) conv.members.set(user.name, user);
      conv.membersKnown = true;
      renderMembers();
    });
  }

  /** The members of the room shown (hidden for Everyone and private conversations). */
  function renderMembers() {
    const conv = state.conversations.get(state.active);
    const visible = Boolean(conv && conv.room);
    show($("members-section"), visible);
    if (!visible) return;
    const list = $("members");
    list.classList.toggle("stale", !conv.member);
    list.replaceChildren();
    for (const user of conv.members.values()) {
      const item = userItem(user);
      if (user.operator) item.append(el("span", "hint role", "op"));
      else if (user.voice) item.append(el("span", "hint role", "voice"));
      list.append(item);
    }
    $("member-count").textContent = "(" + conv.members.size + ")";
    $("members-title").textContent = "Members of " + conv.room;
  }

  /** The topic and the room's controls above the timeline, for a room only. */
  function renderRoomInfo() {
    const conv = state.conversations.get(state.active);
    const visible = Boolean(conv && conv.room);
    show($("room-info"), visible);
    show($("room-leave"), visible);
    if (!visible) return;
    const topic = $("topic");
    topic.textContent = conv.topic ? conv.topic : "No topic";
    topic.classList.toggle("hint", !conv.topic);
    if (!conv.member) {
      topic.textContent = "You are not in " + conv.room + " now.";
      topic.classList.add("hint");
    }
  }

  function onTopicSubmit(event) {
    event.preventDefault();
    const conv = activeConversation();
    if (!conv.room) return;
    if (!isOpen() || !state.joined) {
      setError("topic-error", "Not connected: the topic was not set.");
      return;
    }
    const text = $("topic-text").value.trim(); // empty: clears the topic
    setError("topic-error", "");
    request({ type: "topic", room: conv.room, topic: text }, (reply) => {
      if (reply.type === "error") {
        setError("topic-error", describeError(reply));
        return;
      }
      $("topic-text").value = "";
      if (reply.type === "topic" && state.conversations.get(conv.key) === conv) {
        conv.topic = reply.topic || null;
        renderRoomInfo();
      }
    });
  }

  /** The connection went: the server took us out of every room. */
  function leaveRoomsWithTheConnection() {
    for (const conv of rooms()) {
      if (conv.member) conv.rejoin = true;
      conv.member = false;
      conv.membersKnown = false;
      conv.historyAsked = false;
    }
    renderConversations();
    renderRoomInfo();
    renderMembers();
  }

  /** After a welcome: back into the rooms the page was in (an account may be put back
   * in them by the server first: its `joined` events say so, and the room is not asked
   * for again). */
  function rejoinRooms() {
    for (const conv of rooms()) {
      if (!conv.rejoin || conv.member) continue;
      const req = { type: "join", room: conv.room };
      if (conv.joinKey) req.key = conv.joinKey;
      request(req, (reply) => {
        if (reply.type === "joined") {
          onJoined(reply);
        } else if (!conv.member) {
          conv.rejoin = false;
          systemLine(conv.key, "Could not join " + conv.room + " again: " + describeError(reply));
          renderConversations();
          renderRoomInfo();
        }
      });
    }
  }

  // ---------------------------------------------------------------------------------
  // History

  /** After each welcome: the newest page of the public timeline (merged by msgid with
   * what is on screen already, so a reconnect shows what was missed). */
  function reloadHistory() {
    const conv = conversation(PUBLIC);
    if (!hasFeature("history")) return;
    askHistory(conv, { type: "history", limit: HISTORY_PAGE }, true);
    if (state.account) {
      for (const other of state.conversations.values()) {
        if (other.key !== PUBLIC && !other.room) {
          other.historyAsked = false;
          if (other.key === state.active) loadPrivateHistory(other);
        }
      }
    }
  }

  function loadPrivateHistory(conv) {
    conv.historyAsked = true;
    askHistory(conv, { type: "history", with: conv.key, limit: HISTORY_PAGE }, true);
  }

  function loadRoomHistory(conv) {
    if (!hasFeature("history") || !isOpen()) return;
    conv.historyAsked = true;
    askHistory(conv, { type: "history", room: conv.room, limit: HISTORY_PAGE }, true);
  }

  /** Older messages, when the user scrolls to the top or presses "Load older". */
  function loadOlder(conv) {
    if (!conv.more || conv.loading || !isOpen() || !state.joined) return;
    const first = conv.log.querySelector("li[data-msgid]");
    if (!first) return;
    const req = { type: "history", limit: HISTORY_PAGE, before: first.dataset.msgid };
    if (conv.room) req.room = conv.room;
    else if (conv.key !== PUBLIC) req.with = conv.key;
    askHistory(conv, req, false);
  }

  function askHistory(conv, req, newest) {
    if (!isOpen()) return;
    conv.loading = true;
    request(req, (reply) => {
      conv.loading = false;
      if (reply.type !== "history") {
        // A guest cannot read private history, a user without an account neither, a
        // room's is for its members: nothing to show, and no error worth a line.
        return;
      }
      // Prepending must not move what the reader is looking at.
      const log = conv.log;
      const fromBottom = log.scrollHeight - log.scrollTop;
      for (const message of reply.messages || []) {
        // The lobby's messages carry its name: the page learns it there when the
        // welcome did not say (a server started with --lobby).
        if (conv.key === PUBLIC && !req.with && typeof message.room === "string") {
          state.lobby = message.room;
        }
        addMessage(message, { conv: conv, live: false });
      }
      conv.more = Boolean(reply.more);
      conv.older.hidden = !conv.more;
      if (newest) scrollToEnd(conv);
      else log.scrollTop = log.scrollHeight - fromBottom;
    });
  }

  // ---------------------------------------------------------------------------------
  // Sending

  function onComposerSubmit(event) {
    event.preventDefault();
    const input = $("text");
    const text = input.value;
    if (!text.trim()) return;
    if (!isOpen() || !state.joined) {
      setError("composer-error", "Not connected: the message was not sent.");
      return;
    }
    setError("composer-error", "");
    const conv = activeConversation();
    const req = { type: "message", text: text };
    let to = null;
    if (conv.room) req.room = conv.room; // echoed to us like the lobby's
    else if (conv.key !== PUBLIC) req.to = to = conv.key;
    input.value = "";
    request(req, (reply) => onSendReply(reply, text, to));
  }

  function onSendReply(reply, text, to) {
    if (reply.type !== "ok") {
      // Give the text back so that nothing typed is lost.
      const input = $("text");
      if (!input.value) input.value = text;
      setError("composer-error", describeError(reply));
      return;
    }
    if (to) {
      // The server does not echo a private message to its sender: show ours here.
      const note = reply.queued ? "(kept until " + to + " logs in)" : null;
      addMessage(
        { from: state.me, to: to, text: text, msgid: reply.msgid, time: new Date().toISOString() },
        { conv: conversation(to), live: true, note: note },
      );
    }
  }

  // ---------------------------------------------------------------------------------
  // Start

  function start() {
    $("guest-form").addEventListener("submit", onGuestSubmit);
    $("login-form").addEventListener("submit", onLoginSubmit);
    $("login-open").addEventListener("click", openLaterLogin);
    $("login-cancel").addEventListener("click", () => {
      closeLaterLogin();
      $("text").focus();
    });
    $("account-login").addEventListener("submit", onLaterLoginSubmit);
    $("account-login").addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        closeLaterLogin();
        $("text").focus();
      }
    });
    $("composer").addEventListener("submit", onComposerSubmit);
    $("room-join").addEventListener("submit", onRoomJoinSubmit);
    $("room-name").addEventListener("focus", loadRoomList);
    $("room-leave").addEventListener("click", onLeaveClick);
    $("topic-form").addEventListener("submit", onTopicSubmit);
    $("reconnect").addEventListener("click", onReconnectClick);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && state.conversations.has(state.active)) {
        conversation(state.active).unread = 0;
        renderConversations();
      }
    });
    try {
      const name = localStorage.getItem("imkit.name");
      if (name) $("guest-name").value = $("login-name").value = name;
    } catch (e) {
      // storage disabled
    }
    openConversation(PUBLIC, false);
    showJoin();
    $("guest-name").focus();
    connect();
  }

  start();
})();
