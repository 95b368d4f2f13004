// The demo page: renders the sample conversation of /demo/chat.json (the same file the set-up
// steps store as traces) and mounts the feedback widget under each answer.
(function () {
  'use strict';
  var params = new URLSearchParams(location.search);
  var key = params.get('key');
  // Where the widget sends to: this server unless `?endpoint=` names another (an app's page is
  // usually on another origin than feedloop; the browser test tries both).
  var endpoint = params.get('endpoint') || undefined;
  var origin = location.origin;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = text;
    return node;
  }

  function showSetup() {
    document.getElementById('setup').hidden = false;
    document.getElementById('setup-traces').textContent =
      'KEY=fl_sk_…   # the admin key\n' +
      'curl -s ' + origin + '/demo/chat.json | curl -s ' + origin + '/api/v1/traces \\\n' +
      '  -H "authorization: Bearer $KEY" -H "content-type: application/json" -d @-';
    document.getElementById('setup-key').textContent =
      'curl -s ' + origin + '/api/v1/keys -H "authorization: Bearer $KEY" -H "content-type: application/json" \\\n' +
      '  -d \'{"name": "demo", "role": "public", "allowed_origins": ["' + origin + '"]}\'';
    document.getElementById('key-form').addEventListener('submit', function (event) {
      event.preventDefault();
      params.set('key', document.getElementById('key-input').value.trim());
      location.search = params.toString();
    });
  }

  function log(detail) {
    var entry = el('li', detail.status === 'failed' ? 'failed' : '',
      detail.status + ' ' + detail.path + ' ' + JSON.stringify(detail.body) +
      (detail.error ? ' → ' + detail.error.message : ''));
    document.getElementById('log').appendChild(entry);
  }

  function appButton(label, onClick) {
    var button = el('button', '', label);
    button.type = 'button';
    button.addEventListener('click', onClick);
    return button;
  }

  function render(traces) {
    var chat = document.getElementById('chat');
    chat.hidden = false;
    document.getElementById('log-section').hidden = false;
    traces.forEach(function (trace) {
      var turn = el('article', 'turn');
      turn.id = 'turn-' + trace.id;
      turn.appendChild(el('div', 'who', 'You'));
      turn.appendChild(el('div', 'bubble user', trace.input));
      turn.appendChild(el('div', 'who', 'Assistant'));
      var answer = el('div', 'bubble assistant answer', trace.output);
      answer.id = 'answer-' + trace.id;
      turn.appendChild(answer);
      var actions = el('div', 'app-actions');
      var slot = el('div', 'widget-slot');
      turn.appendChild(actions);
      turn.appendChild(slot);
      chat.appendChild(turn);
      var widget = window.FeedloopWidget.mount(slot, {
        key: key,
        endpoint: endpoint,
        traceId: trace.id,
        sessionId: trace.session_id,
        answer: answer,
        onEvent: log
      });
      // The app's own buttons call the widget's hooks.
      actions.appendChild(appButton('Regenerate', function () {
        widget.regenerate();
        answer.textContent = trace.output;
      }));
      actions.appendChild(appButton('Share', function () { widget.share(); }));
      actions.appendChild(appButton('Edit', function () {
        if (turn.querySelector('.editor')) return;
        var editor = el('div', 'editor');
        var area = el('textarea');
        area.setAttribute('aria-label', 'Your edited version of the answer');
        area.value = trace.output;
        editor.appendChild(area);
        editor.appendChild(appButton('Use my version', function () {
          widget.edited(area.value);
          editor.remove();
        }));
        turn.insertBefore(editor, slot);
        area.focus();
      }));
    });
  }

  if (!key) {
    showSetup();
    return;
  }
  fetch('/demo/chat.json').then(function (response) { return response.json(); }).then(render);
})();
