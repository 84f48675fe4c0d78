// Shows when this copy of the page was rendered: reload to see cached HTML with a new time.
document.getElementById("served").textContent += " Page script ran at " + new Date().toLocaleTimeString() + ".";
