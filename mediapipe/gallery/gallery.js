"use strict";
(() => {
  const tiles = Array.from(document.querySelectorAll(".tile"));
  const buttons = Array.from(document.querySelectorAll("[data-filter-status]"));
  const reason = document.getElementById("reason-filter");
  const shown = document.getElementById("shown");
  let status = "";

  function apply() {
    let visible = 0;
    for (const tile of tiles) {
      const show =
        (status === "" || tile.dataset.status === status) &&
        (reason.value === "" || tile.dataset.reason === reason.value);
      tile.hidden = !show;
      if (show) visible += 1;
    }
    shown.textContent = String(visible);
    for (const button of buttons) {
      button.setAttribute("aria-pressed", String(button.dataset.filterStatus === status));
    }
  }

  for (const button of buttons) {
    button.addEventListener("click", () => {
      status = button.dataset.filterStatus;
      apply();
    });
  }
  reason.addEventListener("change", apply);
  apply();
})();
