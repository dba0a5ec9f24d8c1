// Choose, then confirm. A click or a key (1-5 a face, 0 "not in this lineup") only chooses; the confirm button or
// Enter sends. One confirmation, one answer: the button is disabled once the form is on its way (the server also
// ignores repeats).
//
// The answer goes by fetch, asking for the page it leads to in the same response (X-Survey-Next: the next task, or
// the done page), which is then shown in place of this one at the address the server names (Content-Location): one
// request a task instead of the form's POST and the redirect after it. Where the server answers with a redirect
// instead, the task page is opened, which leads where the server says. Without fetch the form posts as a plain
// form. A server error (5xx) or a lost connection leaves the form as it was and says so, and the same answer can be
// confirmed again: the server stores a task's answer once, however often it is sent.
var lineup = document.getElementById("lineup");
var send = document.getElementById("send");
var rating = document.getElementById("confidence");
var SEND_TIMEOUT_MS = 30000;  // then the worker is told, and may confirm again

function chosen(name) { return lineup.querySelector("input[name=" + name + "]:checked"); }
function ready() { return chosen("choice") && (!rating || chosen("confidence")); }

function describe() {
  var choice = chosen("choice");
  if (!choice) { send.textContent = "Choose a face first"; return; }
  var what = choice.value === "absent" ? "not in this lineup" : "Face " + choice.value;
  var rated = rating && chosen("confidence") ? ", sure " + chosen("confidence").value : "";
  send.textContent = rating && !chosen("confidence") ? "Now say how sure you are" : "Confirm: " + what + rated;
}

function sendAgain(text) {
  var note = document.getElementById("send-problem");
  if (!note) {
    note = document.createElement("p");
    note.id = "send-problem";
    note.className = "message";
    note.setAttribute("role", "alert");
    send.parentNode.insertBefore(note, send);
  }
  note.textContent = text;
  delete lineup.dataset.sent;
  send.disabled = false;
  describe();
}

function show(response, html) {
  if (response.status >= 500) {
    var said = new DOMParser().parseFromString(html, "text/html").querySelector(".message");
    sendAgain((said ? said.textContent : "The server could not take the answer") +
              ". Your choice is kept: confirm it again.");
    return;
  }
  // The next task, the done page or a refusal: shown as the page the form's own POST would have led to.
  history.replaceState({ answered: true }, "", response.headers.get("Content-Location") || location.href);
  document.open();
  document.write(html);
  document.close();
}

lineup.addEventListener("submit", function (event) {
  if (this.dataset.sent || !ready()) { event.preventDefault(); return; }
  this.dataset.sent = "1";
  if (!window.fetch || !window.URLSearchParams) {
    setTimeout(function () { send.disabled = true; }, 0);
    return;  // the plain form's POST
  }
  event.preventDefault();
  send.disabled = true;
  send.textContent = "Sending…";
  var waited = window.AbortController ? new AbortController() : null;
  var patience = waited && setTimeout(function () { waited.abort(); }, SEND_TIMEOUT_MS);
  fetch(lineup.action, { method: "POST", body: new URLSearchParams(new FormData(lineup)),
                         headers: { "X-Survey-Next": "task" }, credentials: "same-origin", redirect: "manual",
                         signal: waited ? waited.signal : undefined })
    .then(function (response) {
      if (response.type === "opaqueredirect") { clearTimeout(patience); location.assign(lineup.dataset.task); return; }
      return response.text().then(function (html) { clearTimeout(patience); show(response, html); });  // whole page
    })
    .catch(function () {
      clearTimeout(patience);
      sendAgain("The connection failed, or the server did not reply within " + SEND_TIMEOUT_MS / 1000 + " s. " +
                "Confirm again: a task's answer is stored once.");
    });
});
lineup.addEventListener("change", function (event) {
  if (rating && event.target.name === "choice") { rating.hidden = false; }
  describe();
});

// A study that asks for confidence: the rating comes after the choice, so it appears once a face is picked
// (without JavaScript it is simply always shown). Focus stays where it is, so arrow keys keep moving between faces.
if (rating && !chosen("choice")) { rating.hidden = true; }
describe();

// A task shown in place after an answer: start at the top, with the focus on "Task n of m", which a screen reader
// then reads out as it would a new page's title.
if (history.state && history.state.answered) {
  var progress = document.querySelector(".progress");
  window.scrollTo(0, 0);
  if (progress) { progress.focus(); }
  history.replaceState(null, "", location.href);  // once: a later reload is an ordinary page load
}

function pick(input) {
  input.checked = true;
  input.dispatchEvent(new Event("change", { bubbles: true }));
}

document.addEventListener("keydown", function (event) {
  if (event.ctrlKey || event.metaKey || event.altKey) { return; }
  var key = event.key;
  if (key === "Enter") {
    if (event.target.tagName === "BUTTON") { return; }  // the button's own Enter is its click
    event.preventDefault();
    if (ready()) { lineup.requestSubmit(send); }
    return;
  }
  if (!/^[0-9]$/.test(key)) { return; }
  // Digits rate while the rating has the focus, and choose a face otherwise.
  if (rating && !rating.hidden && rating.contains(document.activeElement)) {
    var point = rating.querySelector("input[value='" + key + "']");
    if (point) { pick(point); point.focus(); event.preventDefault(); }
    return;
  }
  var face = lineup.querySelector("input[name=choice][value='" + (key === "0" ? "absent" : key) + "']");
  if (!face) { return; }
  pick(face);
  event.preventDefault();
  if (rating) {  // on to the rating: its digits come next
    (chosen("confidence") || rating.querySelector("input")).focus();
  } else {
    face.focus();
  }
});
