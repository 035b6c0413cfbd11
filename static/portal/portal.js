// Small progressive enhancements; every page works without JavaScript.

// Times in the viewer's time zone. The server writes every <time datetime="..."> in UTC ("2026-05-04 09:30 UTC"):
// // the text becomes the browser's local time and the UTC value moves to the title, shown on hover. Dates without
// a time of day (an end date) are left alone; without JavaScript the UTC text stays.
(function () {
  "use strict";

  function localTimes(root) {
    if (!root || !root.querySelectorAll || typeof Intl === "undefined") {
      return;
    }
    root.querySelectorAll("time[datetime]:not([data-local])").forEach(function (element) {
      var value = element.getAttribute("datetime");
      var when = new Date(value);
      if (value.indexOf("T") === -1 || isNaN(when.getTime())) {
        return;
      }
      var utc = element.textContent.trim();
      var options = { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" };
      if (/\d+:\d+:\d+/.test(utc)) {
        options.second = "2-digit";
      }
      element.title = /UTC$/.test(utc) ? utc : utc + " UTC";
      element.textContent = new Intl.DateTimeFormat(undefined, options).format(when);
      element.setAttribute("data-local", "");
    });
    // A column header's "(UTC)" is true only of the server's text: the cells now carry their own zone.
    root.querySelectorAll("[data-utc-note]").forEach(function (note) {
      note.remove();
    });
  }

  // A list's search form sends only the filters that are set: "?team=blue" rather than "?team=blue&requester=
  // &workspace=&...". Emptied fields are disabled for the submission and enabled again when the page is shown
  // from the browser's history.
  function dropEmptyFilters(event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-list-filters]")) {
      return;
    }
    form.querySelectorAll("input[name], select[name]").forEach(function (field) {
      if (field.value === "" && !field.disabled) {
        field.disabled = true;
        field.setAttribute("data-emptied", "");
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
  });
  document.addEventListener("submit", dropEmptyFilters);
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("[data-emptied]").forEach(function (field) {
      field.disabled = false;
      field.removeAttribute("data-emptied");
    });
  });
  // After an outerHTML swap the event's target may be the element replaced: convert what is new anywhere.
  document.addEventListener("htmx:afterSettle", function () {
    localTimes(document);
  });
})();
