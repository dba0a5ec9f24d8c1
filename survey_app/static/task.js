// One click, one answer: the buttons are disabled once the form is on its way (the server also ignores
// repeats). Disabling waits a tick, because a button disabled before submission would not send its value.
document.getElementById("lineup").addEventListener("submit", function (event) {
  if (this.dataset.sent) { event.preventDefault(); return; }
  this.dataset.sent = "1";
  setTimeout(function () {
    document.querySelectorAll("#lineup button").forEach(function (b) { b.disabled = true; });
  }, 0);
});
