// Choose, then confirm. A click or a key (1-5 a face, 0 "not in this lineup") only chooses; the confirm button or
// Enter sends. One confirmation, one answer: the button is disabled once the form is on its way (the server also
// ignores repeats).
var lineup = document.getElementById("lineup");
var send = document.getElementById("send");
var rating = document.getElementById("confidence");

function chosen(name) { return lineup.querySelector("input[name=" + name + "]:checked"); }
function ready() { return chosen("choice") && (!rating || chosen("confidence")); }

function describe() {
  var choice = chosen("choice");
  if (!choice) { send.textContent = "Choose a face first"; return; }
  var what = choice.value === "absent" ? "not in this lineup" : "Face " + choice.value;
  var rated = rating && chosen("confidence") ? ", sure " + chosen("confidence").value : "";
  send.textContent = rating && !chosen("confidence") ? "Now say how sure you are" : "Confirm: " + what + rated;
}

lineup.addEventListener("submit", function (event) {
  if (this.dataset.sent || !ready()) { event.preventDefault(); return; }
  this.dataset.sent = "1";
  setTimeout(function () { send.disabled = true; }, 0);
});
lineup.addEventListener("change", function (event) {
  if (rating && event.target.name === "choice") { rating.hidden = false; }
  describe();
});

// A study that asks for confidence: the rating comes after the choice, so it appears once a face is picked
// (without JavaScript it is simply always shown). Focus stays where it is, so arrow keys keep moving between faces.
if (rating && !chosen("choice")) { rating.hidden = true; }
describe();

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
