/*! feedloop feedback widget: thumbs, reasons, comment, correction, highlights and implicit
 * signals for one answer of an LLM app. No dependencies. See docs: "The feedback widget".
 *
 *   <script src="https://feedloop.example.com/widget.js" data-key="fl_pk_…"></script>
 *   <div data-feedloop-trace="TRACE_ID" data-feedloop-answer="#answer-1"></div>
 * or
 *   var w = FeedloopWidget.mount(element, {key: "fl_pk_…", traceId: "…", answer: answerElement});
 *   w.regenerate(); w.share(); w.edited(text); w.copied(); w.complete(); w.signal(type, fields);
 *
 * Everything is sent with client-chosen ids: a retry (the offline queue in localStorage, a
 * second tab flushing the same queue) is a no-op on the server. Ranges are in Unicode code
 * points of the answer's text, as the server counts them.
 */
(function (window, document) {
  'use strict';
  if (window.FeedloopWidget) return;

  var script = document.currentScript;
  var defaults = (script && script.dataset) || {};
  var scriptOrigin = script && script.src ? new URL(script.src, location.href).origin : location.origin;
  var QUEUE_KEY = 'feedloop:queue';
  var MAX_QUEUE = 200;
  var MAX_BACKOFF_MS = 60000;
  var MAX_AGE_MS = 7 * 24 * 3600 * 1000;
  var pageAuthor = 'anon-' + randomId(10);
  var taxonomies = {};
  var widgets = [];
  var styled = false;

  var LABELS = {
    group: 'Feedback on this answer',
    up: 'Good answer',
    down: 'Bad answer',
    more: 'Details',
    reasons: 'What was wrong?',
    comment: 'Comment',
    correction: 'A better answer',
    send: 'Send',
    select: 'Comment on selection',
    note: 'Your note on',
    addNote: 'Add note',
    cancel: 'Cancel',
    thanks: 'Thanks for your feedback',
    queued: 'Saved; it will be sent when the connection is back',
    failed: 'Could not send feedback'
  };

  function randomId(length) {
    var alphabet = '0123456789abcdefghijklmnopqrstuvwxyz';
    var bytes = new Uint8Array(length);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    var out = '';
    for (var i = 0; i < length; i++) out += alphabet[bytes[i] % 36];
    return out;
  }

  /** Code points in the first `utf16` code units of `text`. */
  function codePoints(text, utf16) {
    return Array.from(text.slice(0, utf16)).length;
  }

  function humanize(name) {
    var words = name.replace(/_/g, ' ');
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  function el(tag, attributes, children) {
    var node = document.createElement(tag);
    for (var name in attributes || {}) {
      var value = attributes[name];
      if (value === false || value == null) continue;
      if (name === 'text') node.textContent = value;
      else if (name.slice(0, 2) === 'on') node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? '' : value);
    }
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  /** A thumb drawn with the text's colour (no emoji font needed); `down` turns it over. */
  function thumb(down) {
    var ns = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(ns, 'svg');
    var attributes = { viewBox: '0 0 24 24', width: '16', height: '16', 'aria-hidden': 'true', focusable: 'false',
      fill: 'none', stroke: 'currentColor', 'stroke-width': '2', 'stroke-linecap': 'round', 'stroke-linejoin': 'round' };
    for (var name in attributes) svg.setAttribute(name, attributes[name]);
    var path = document.createElementNS(ns, 'path');
    path.setAttribute('d', 'M7 10v11H3V10h4zm0 0l4-8a3 3 0 0 1 3 3v3h5.5a2 2 0 0 1 2 2.3l-1.4 8a2 2 0 0 1-2 1.7H7');
    if (down) path.setAttribute('transform', 'rotate(180 12 12)');
    svg.appendChild(path);
    return svg;
  }

  // ---- The queue: every write goes through it, so a failed one is retried with backoff. ----

  var queue = loadQueue();
  var flushTimer = null;
  var flushing = false;
  var again = false;
  var failures = 0;

  function loadQueue() {
    try {
      var items = JSON.parse(window.localStorage.getItem(QUEUE_KEY) || '[]');
      return Array.isArray(items) ? items : [];
    } catch (e) {
      return [];
    }
  }

  function saveQueue() {
    try {
      window.localStorage.setItem(QUEUE_KEY, JSON.stringify(queue));
    } catch (e) {
      // Private mode or full storage: the queue lives in memory for this page only.
    }
  }

  function enqueue(item) {
    item.queued_at = Date.now();
    queue = loadQueue().concat([item]).slice(-MAX_QUEUE);
    saveQueue();
    flush();
  }

  function settle(id) {
    queue = loadQueue().filter(function (item) { return item.body.id !== id; });
    saveQueue();
  }

  function markAttempt(id) {
    queue = loadQueue().map(function (item) {
      if (item.body.id === id) item.attempt = (item.attempt || 0) + 1;
      return item;
    });
    saveQueue();
  }

  /**
   * Sends the queue in order, one item at a time, and stops at the first that fails: so items
   * arrive in the order the user acted (a change of mind supersedes the first judgement by
   * arrival), even after a time offline. Then retries after a backoff (1 s doubling to 60 s,
   * with jitter), at once when the browser is back online or the user does something new.
   */
  function flush() {
    if (flushing) {
      again = true;
      return;
    }
    flushing = true;
    clearTimeout(flushTimer);
    var now = Date.now();
    // A week-old item is given up (a token in it has expired long ago).
    queue = loadQueue().filter(function (item) { return !(now - item.queued_at > MAX_AGE_MS); });
    saveQueue();
    var chain = Promise.resolve(true);
    queue.forEach(function (item) {
      chain = chain.then(function (ok) { return ok && send(item); });
    });
    chain.then(function (ok) {
      flushing = false;
      failures = ok ? 0 : failures + 1;
      if (again) {
        again = false;
        flush();
      } else if (!ok) {
        var backoff = Math.min(MAX_BACKOFF_MS, 1000 * Math.pow(2, failures - 1));
        flushTimer = setTimeout(flush, backoff * (0.5 + Math.random() / 2));
      }
    });
  }

  /** Sends one item: true when it is settled (stored, or refused for good), false to retry. */
  function send(item) {
    var target = widgetFor(item.body.trace_id);
    var retry = function () {
      markAttempt(item.body.id);
      report(target, 'queued', item);
      return false;
    };
    return window.fetch(item.url, {
      method: 'POST',
      mode: 'cors',
      credentials: 'omit',
      keepalive: true,
      headers: { 'content-type': 'application/json', authorization: 'Bearer ' + item.auth },
      body: JSON.stringify(item.body)
    }).then(function (response) {
      if (response.status === 408 || response.status === 429 || response.status >= 500) return retry();
      settle(item.body.id);
      if (response.ok) {
        report(target, 'sent', item);
        return true;
      }
      // The server refused the item itself (a 4xx): retrying cannot help.
      return response.json().catch(function () { return {}; }).then(function (answer) {
        report(target, 'failed', item, answer.error);
        return true;
      });
    }, retry);
  }

  function widgetFor(traceId) {
    for (var i = 0; i < widgets.length; i++) if (widgets[i].traceId === traceId) return widgets[i];
    return null;
  }

  function report(widget, status, item, error) {
    if (!widget) return;
    var labels = widget.labels;
    widget.announce(status === 'sent' ? labels.thanks : status === 'queued' ? labels.queued : labels.failed);
    var detail = { status: status, path: item.path, body: item.body, error: error || null };
    widget.root.dispatchEvent(new CustomEvent('feedloop', { bubbles: true, detail: detail }));
    if (widget.options.onEvent) widget.options.onEvent(detail);
  }

  window.addEventListener('online', flush);

  // ---- Styles: CSS variables on .fl-w are the theme. ----

  var CSS =
    '.fl-w{--fl-fg:#1f2328;--fl-bg:#fff;--fl-muted:#656d76;--fl-accent:#0969da;--fl-border:#d0d7de;' +
    '--fl-chip:#f6f8fa;--fl-radius:8px;--fl-font:inherit;font:14px/1.4 var(--fl-font);color:var(--fl-fg);' +
    'margin:6px 0}' +
    '.fl-w.fl-dark{--fl-fg:#e6edf3;--fl-bg:#0d1117;--fl-muted:#9198a1;--fl-accent:#4493f8;' +
    '--fl-border:#3d444d;--fl-chip:#151b23}' +
    '.fl-w button{font:inherit;color:var(--fl-fg);background:var(--fl-chip);border:1px solid var(--fl-border);' +
    'border-radius:var(--fl-radius);padding:3px 10px;cursor:pointer;margin:0 4px 4px 0;vertical-align:middle}' +
    '.fl-w button svg{display:block;margin:2px 0}' +
    '.fl-w button:hover{border-color:var(--fl-accent)}' +
    '.fl-w button:focus-visible,.fl-w textarea:focus-visible{outline:2px solid var(--fl-accent);outline-offset:1px}' +
    '.fl-w button[aria-pressed=true]{background:var(--fl-accent);border-color:var(--fl-accent);color:var(--fl-bg)}' +
    '.fl-w .fl-primary{background:var(--fl-accent);color:var(--fl-bg);border-color:var(--fl-accent)}' +
    '.fl-w .fl-panel,.fl-w .fl-note{background:var(--fl-bg);border:1px solid var(--fl-border);' +
    'border-radius:var(--fl-radius);padding:10px;margin-top:6px;max-width:34em}' +
    '.fl-w fieldset{border:0;margin:0 0 6px;padding:0}.fl-w legend,.fl-w label{display:block;' +
    'color:var(--fl-muted);margin-bottom:4px}' +
    '.fl-w textarea{display:block;box-sizing:border-box;width:100%;min-height:3.2em;margin:2px 0 8px;font:inherit;' +
    'color:var(--fl-fg);background:var(--fl-bg);border:1px solid var(--fl-border);border-radius:var(--fl-radius);padding:5px}' +
    '.fl-w blockquote{margin:0 0 6px;padding-left:8px;border-left:3px solid var(--fl-accent)}' +
    '.fl-w .fl-bar{display:flex;flex-wrap:wrap;align-items:center}.fl-w .fl-bar button{margin-bottom:0}' +
    '.fl-w .fl-status{color:var(--fl-muted);margin-left:4px}' +
    '.fl-w [hidden]{display:none}' +
    '::highlight(feedloop){background:#fff3a3;color:#1f2328}';

  function addStyles(nonce) {
    if (styled) return;
    styled = true;
    var style = el('style', { nonce: nonce || false, 'data-feedloop': true });
    style.textContent = CSS;
    document.head.appendChild(style);
  }

  // ---- One widget: one answer, one trace. ----

  function Widget(element, options) {
    this.options = options;
    this.traceId = String(options.traceId);
    this.endpoint = String(options.endpoint || defaults.endpoint || scriptOrigin).replace(/\/+$/, '');
    this.auth = options.token || options.key || defaults.token || defaults.key;
    if (!this.auth) throw new Error('feedloop widget: a public key (key) or a feedback token (token) is required');
    this.answer = typeof options.answer === 'string' ? document.querySelector(options.answer) : options.answer;
    this.author = options.author || defaults.author || pageAuthor;
    this.sequence = 0;
    this.instance = randomId(8);
    this.engaged = false;
    this.done = options.complete !== false;
    this.dwellMs = 0;
    this.visibleSince = null;
    this.left = false;
    this.selection = null;
    this.build(element);
    this.watch();
  }

  Widget.prototype.id = function (kind) {
    this.sequence += 1;
    return 'fl-' + this.instance + '-' + kind + '-' + this.sequence;
  };

  Widget.prototype.common = function (kind) {
    var body = { id: this.id(kind), trace_id: this.traceId };
    var o = this.options;
    if (o.sessionId) body.session_id = String(o.sessionId);
    if (o.spanId) body.span_id = String(o.spanId);
    body.author = String(this.author);
    if (o.authorRole && kind !== 'signal') body.author_role = String(o.authorRole);
    if (o.metadata) body.metadata = o.metadata;
    return body;
  };

  /** Queues one feedback item (`payload` holds its kind's field). */
  Widget.prototype.feedback = function (payload) {
    var body = this.common('feedback');
    for (var name in payload) body[name] = payload[name];
    this.engaged = true;
    enqueue({ url: this.endpoint + '/api/v1/feedback', path: '/api/v1/feedback', auth: this.auth, body: body });
    return body.id;
  };

  /** Queues one implicit signal of `type`, with the signal body's other fields. */
  Widget.prototype.signal = function (type, fields) {
    var body = this.common('signal');
    body.type = type;
    for (var name in fields || {}) body[name] = fields[name];
    if (type !== 'dwell' && type !== 'abandon') this.engaged = true;
    enqueue({ url: this.endpoint + '/api/v1/signals', path: '/api/v1/signals', auth: this.auth, body: body });
    return body.id;
  };

  Widget.prototype.regenerate = function () { return this.signal('regenerate'); };
  Widget.prototype.share = function () { return this.signal('share'); };
  Widget.prototype.edited = function (text) { return this.signal('edit', { edited_text: String(text) }); };
  /** The app's own copy button copied the whole answer. */
  Widget.prototype.copied = function () {
    return this.signal('copy', this.answer ? { value: Array.from(this.answer.textContent).length } : {});
  };
  /** The answer finished streaming (for `abandon`'s `before_complete`). */
  Widget.prototype.complete = function () { this.done = true; };

  Widget.prototype.announce = function (text) {
    this.status.textContent = '';
    var status = this.status;
    setTimeout(function () { status.textContent = text; }, 30);
  };

  Widget.prototype.build = function (element) {
    var self = this;
    var o = this.options;
    var labels = {};
    for (var name in LABELS) labels[name] = (o.labels && o.labels[name]) || LABELS[name];
    this.labels = labels;
    addStyles(o.nonce || defaults.nonce);
    var theme = o.theme || defaults.theme;
    var root = el('div', { class: 'fl-w' + (theme === 'dark' ? ' fl-dark' : ''), role: 'group', 'aria-label': labels.group });
    if (theme && typeof theme === 'object') {
      for (var variable in theme) root.style.setProperty('--fl-' + variable, theme[variable]);
    }
    var panelId = 'fl-panel-' + this.instance;
    this.up = el('button', { type: 'button', class: 'fl-up', 'aria-pressed': 'false', 'aria-label': labels.up, onclick: function () { self.rate(1); } }, [thumb(false)]);
    this.down = el('button', { type: 'button', class: 'fl-down', 'aria-pressed': 'false', 'aria-label': labels.down, onclick: function () { self.rate(0); } }, [thumb(true)]);
    this.more = el('button', { type: 'button', class: 'fl-more', 'aria-expanded': 'false', 'aria-controls': panelId, text: labels.more, onclick: function () { self.toggle(self.panel.hidden); } });
    this.selectButton = el('button', { type: 'button', class: 'fl-select', hidden: true, text: labels.select, onclick: function () { self.openNote(); } });
    this.status = el('span', { class: 'fl-status', role: 'status', 'aria-live': 'polite' });

    this.chips = el('div', { class: 'fl-chips' });
    var reasons = el('fieldset', {}, [el('legend', { text: labels.reasons }), this.chips]);
    var commentId = 'fl-comment-' + this.instance;
    var correctionId = 'fl-correction-' + this.instance;
    this.comment = el('textarea', { id: commentId, class: 'fl-comment' });
    this.correction = el('textarea', { id: correctionId, class: 'fl-correction' });
    this.panel = el('div', { id: panelId, class: 'fl-panel', role: 'region', 'aria-label': labels.more, hidden: true }, [
      reasons,
      el('label', { for: commentId, text: labels.comment }), this.comment,
      el('label', { for: correctionId, text: labels.correction }), this.correction,
      el('button', { type: 'button', class: 'fl-send fl-primary', text: labels.send, onclick: function () { self.sendDetails(); } })
    ]);

    var noteId = 'fl-note-' + this.instance;
    this.quote = el('blockquote', { class: 'fl-quote' });
    this.noteText = el('textarea', { id: noteId, class: 'fl-note-text' });
    this.note = el('div', { class: 'fl-note', role: 'region', 'aria-label': labels.select, hidden: true }, [
      el('label', { for: noteId, text: labels.note }), this.quote, this.noteText,
      el('button', { type: 'button', class: 'fl-add-note fl-primary', text: labels.addNote, onclick: function () { self.sendNote(); } }),
      el('button', { type: 'button', class: 'fl-cancel', text: labels.cancel, onclick: function () { self.closeNote(); } })
    ]);

    root.appendChild(el('div', { class: 'fl-bar' }, [this.up, this.down, this.more, this.selectButton, this.status]));
    root.appendChild(this.panel);
    root.appendChild(this.note);
    root.addEventListener('keydown', function (event) {
      if (event.key !== 'Escape') return;
      if (!self.note.hidden) { self.closeNote(); self.selectButton.focus(); } else if (!self.panel.hidden) { self.toggle(false); self.more.focus(); }
    });
    element.appendChild(root);
    this.root = root;
    this.loadReasons();
  };

  Widget.prototype.loadReasons = function () {
    var self = this;
    var given = this.options.categories;
    var load = given
      ? Promise.resolve(given.map(function (name) { return typeof name === 'string' ? { name: name } : name; }))
      : (taxonomies[this.endpoint + ' ' + this.auth] = taxonomies[this.endpoint + ' ' + this.auth] ||
          window.fetch(this.endpoint + '/api/v1/taxonomy', { headers: { authorization: 'Bearer ' + this.auth }, credentials: 'omit' })
            .then(function (response) { return response.ok ? response.json() : { categories: [] }; })
            .then(function (body) { return body.categories.filter(function (c) { return c.active; }); }));
    load.then(function (categories) {
      categories.forEach(function (category) {
        self.chips.appendChild(el('button', {
          type: 'button', class: 'fl-chip', 'aria-pressed': 'false', 'data-category': category.name,
          title: category.description || false, text: humanize(category.name),
          onclick: function () { this.setAttribute('aria-pressed', String(this.getAttribute('aria-pressed') !== 'true')); }
        }));
      });
    }, function () { /* offline: no chips until the next page */ });
  };

  Widget.prototype.rate = function (value) {
    this.up.setAttribute('aria-pressed', String(value === 1));
    this.down.setAttribute('aria-pressed', String(value === 0));
    this.feedback({ rating: { value: value } });
    if (value === 0) this.toggle(true);
  };

  Widget.prototype.toggle = function (open) {
    this.panel.hidden = !open;
    this.more.setAttribute('aria-expanded', String(open));
    if (open) (this.chips.querySelector('button') || this.comment).focus();
  };

  Widget.prototype.sendDetails = function () {
    var chosen = Array.prototype.map.call(this.chips.querySelectorAll('[aria-pressed=true]'), function (chip) {
      return chip.getAttribute('data-category');
    });
    if (chosen.length) this.feedback({ categories: chosen });
    if (this.comment.value.trim()) this.feedback({ comment: this.comment.value });
    if (this.correction.value.trim()) this.feedback({ correction: { text: this.correction.value, kind: 'answer' } });
    this.comment.value = '';
    this.correction.value = '';
    this.toggle(false);
    this.more.focus();
  };

  /** The current selection as a code-point range of the answer, if it lies inside it. */
  Widget.prototype.selectedRange = function () {
    var selection = window.getSelection();
    if (!this.answer || !selection || selection.rangeCount === 0 || selection.isCollapsed) return null;
    var range = selection.getRangeAt(0);
    if (!this.answer.contains(range.commonAncestorContainer)) return null;
    var before = document.createRange();
    before.selectNodeContents(this.answer);
    before.setEnd(range.startContainer, range.startOffset);
    var text = this.answer.textContent;
    var from16 = before.toString().length;
    var quote = range.toString();
    var start = codePoints(text, from16);
    var end = codePoints(text, from16 + quote.length);
    return end > start ? { start: start, end: end, quote: quote, range: range.cloneRange() } : null;
  };

  Widget.prototype.openNote = function () {
    if (!this.selection) return;
    this.quote.textContent = this.selection.quote;
    this.note.hidden = false;
    if (window.CSS && CSS.highlights && window.Highlight) CSS.highlights.set('feedloop', new Highlight(this.selection.range));
    this.noteText.focus();
  };

  Widget.prototype.closeNote = function () {
    this.note.hidden = true;
    this.noteText.value = '';
    if (window.CSS && CSS.highlights) CSS.highlights.delete('feedloop');
  };

  Widget.prototype.sendNote = function () {
    var s = this.selection;
    if (!s) return;
    var annotation = { start: s.start, end: s.end, quote: s.quote };
    if (this.noteText.value.trim()) annotation.comment = this.noteText.value;
    this.feedback({ annotation: annotation });
    this.closeNote();
    this.selection = null;
    this.selectButton.hidden = true;
  };

  Widget.prototype.watch = function () {
    var self = this;
    if (!this.answer) return;
    document.addEventListener('selectionchange', function () {
      var range = self.selectedRange();
      if (range) self.selection = range;
      if (range || self.note.hidden) self.selectButton.hidden = !range;
    });
    document.addEventListener('copy', function () {
      var range = self.selectedRange();
      if (!range) return;
      self.signal('copy', { range: { start: range.start, end: range.end }, value: range.end - range.start });
    });
    // Dwell: time the answer is on screen while the page is visible.
    var onScreen = false;
    var tick = function () {
      var now = Date.now();
      if (self.visibleSince != null) self.dwellMs += now - self.visibleSince;
      self.visibleSince = onScreen && document.visibilityState === 'visible' ? now : null;
    };
    if (window.IntersectionObserver) {
      new IntersectionObserver(function (entries) {
        onScreen = entries[entries.length - 1].isIntersecting;
        tick();
      }, { threshold: 0.25 }).observe(this.answer);
    }
    document.addEventListener('visibilitychange', tick);
    this.tick = tick;
  };

  /** The page goes away: dwell, and abandon when the user did nothing with the answer. */
  Widget.prototype.leave = function () {
    if (this.left) return [];
    this.left = true;
    if (this.tick) this.tick();
    var items = [];
    var dwell = Math.round(this.dwellMs);
    if (dwell > 0) items.push(this.leaveSignal('dwell', { value: dwell }));
    if (!this.engaged) items.push(this.leaveSignal('abandon', { before_complete: !this.done }));
    return items;
  };

  Widget.prototype.leaveSignal = function (type, fields) {
    var body = this.common('signal');
    body.type = type;
    for (var name in fields) body[name] = fields[name];
    return { url: this.endpoint + '/api/v1/signals', path: '/api/v1/signals', auth: this.auth, body: body };
  };

  // A beacon cannot carry headers, so its key rides in the query (public keys and feedback
  // tokens only) and its JSON is sent as text/plain, the one type a beacon may send anywhere.
  // The items also stay in the queue: if the beacon is lost, a later page sends them again,
  // and their ids make that a no-op if it was not.
  window.addEventListener('pagehide', function () {
    var batches = {};
    widgets.forEach(function (widget) {
      widget.leave().forEach(function (item) {
        var target = item.url + '?key=' + encodeURIComponent(item.auth);
        (batches[target] = batches[target] || []).push(item);
      });
    });
    for (var target in batches) {
      var items = batches[target];
      items.forEach(function (item) { item.queued_at = Date.now(); });
      queue = loadQueue().concat(items).slice(-MAX_QUEUE);
      saveQueue();
      var body = JSON.stringify(items.map(function (item) { return item.body; }));
      if (navigator.sendBeacon) navigator.sendBeacon(target, new Blob([body], { type: 'text/plain' }));
    }
  });

  function mount(element, options) {
    if (typeof element === 'string') element = document.querySelector(element);
    if (!options || !options.traceId) throw new Error('feedloop widget: traceId is required');
    var widget = new Widget(element, options);
    widgets.push(widget);
    flush();
    return widget;
  }

  function mountDeclared() {
    var found = document.querySelectorAll('[data-feedloop-trace]:not([data-feedloop-mounted])');
    Array.prototype.forEach.call(found, function (element) {
      var d = element.dataset;
      element.setAttribute('data-feedloop-mounted', '');
      mount(element, {
        traceId: d.feedloopTrace, key: d.feedloopKey, token: d.feedloopToken, endpoint: d.feedloopEndpoint,
        answer: d.feedloopAnswer, sessionId: d.feedloopSession, theme: d.feedloopTheme, author: d.feedloopAuthor
      });
    });
  }

  window.FeedloopWidget = { mount: mount, mountAll: mountDeclared, flush: flush, widgets: widgets };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', mountDeclared);
  else mountDeclared();
  flush();
})(window, document);
