// "Copy code": the completion code onto the clipboard, and the code selected, so a long press or Ctrl+C also works
// where the clipboard is not available (an insecure origin, an old browser).
document.querySelectorAll("button.copy").forEach(function (button) {
  button.addEventListener("click", function () {
    var code = document.getElementById(button.dataset.copy);
    var range = document.createRange();
    range.selectNodeContents(code);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(code.textContent.trim()).then(done, function () {
        button.textContent = "Selected: press Ctrl+C";
      });
    } else {
      button.textContent = document.execCommand("copy") ? "Copied" : "Selected: press Ctrl+C";
    }
  });
});
