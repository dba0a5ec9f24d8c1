// One click, one answer: the buttons are disabled once the form is on its way (the server also ignores
// repeats). Disabling waits a tick, because a button disabled before submission would not send its value.
var lineup = document.getElementById("lineup");
lineup.addEventListener("submit", function (event) {
  if (this.dataset.sent) { event.preventDefault(); return; }
  this.dataset.sent = "1";
  setTimeout(function () {
    document.querySelectorAll("#lineup button").forEach(function (b) { b.disabled = true; });
  }, 0);
});

// A study that asks for confidence: the rating comes after the choice, so it appears once a face is picked
// (without JavaScript it is simply always shown). Focus stays where it is, so arrow keys keep moving between faces.
var rating = document.getElementById("confidence");
if (rating && !lineup.querySelector("input[name=choice]:checked")) {
  rating.hidden = true;
  lineup.addEventListener("change", function (event) {
    if (event.target.name === "choice") { rating.hidden = false; }
  });
}
