// The only script of `ledgerflow ui`, served as /static/ui.js: pages carry a CSP with
// script-src 'self', so no inline script (and no script stored in a ledger) ever runs.
// An element with data-poll is polled while the run or task is live:
//  - a task's logs (data-kind="logs"): asks only for what is new since the offsets it has
//    (data-stdout / data-stderr) and appends it;
//  - a run (data-kind="run"): reloads the page when the run's signature changes.
(function () {
  var el = document.querySelector('[data-poll]');
  if (!el) return;
  var every = +el.getAttribute('data-every') || 1500;
  var seen = null;
  function url() {
    var base = el.getAttribute('data-poll');
    if (el.getAttribute('data-kind') !== 'logs') return base;
    return base + '?stdout=' + (+el.getAttribute('data-stdout') || 0) +
      '&stderr=' + (+el.getAttribute('data-stderr') || 0);
  }
  function tick() {
    fetch(url(), {cache: 'no-store'}).then(function (r) { return r.json(); }).then(function (d) {
      el.setAttribute('data-polls', (+el.getAttribute('data-polls') || 0) + 1);
      ['stdout', 'stderr'].forEach(function (s) {
        if (!d[s]) return;
        var pre = document.getElementById(s);
        if (pre && d[s].text) pre.appendChild(document.createTextNode(d[s].text));
        el.setAttribute('data-' + s, d[s].end);
      });
      if (d.signature !== undefined) {
        if (seen !== null && seen !== d.signature) { location.reload(); return; }
        seen = d.signature;
      }
      if (d.live) { setTimeout(tick, every); } else { el.setAttribute('data-live', '0'); }
    }).catch(function () { setTimeout(tick, every * 2); });
  }
  setTimeout(tick, every);
})();
