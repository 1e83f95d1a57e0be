// imip-manager: the week as a time grid, drawn by event-calendar (MIT,
// static/vendor, installed by tools/manager-assets) from the week's JSON.
// An enhancement only: the server-rendered list below stays the page's
// content (for screen readers, keyboards and browsers without script).
// Titles are text (event-calendar escapes them); times are the user's
// local wall times, shown as they are.
(function () {
  "use strict";
  var grid = document.getElementById("grid");
  if (!grid || typeof EventCalendar === "undefined" || !window.fetch) {
    return;
  }
  fetch(grid.dataset.events, { credentials: "same-origin" })
    .then(function (answer) {
      if (!answer.ok) {
        throw new Error(answer.status);
      }
      return answer.json();
    })
    .then(function (week) {
      grid.hidden = false;
      EventCalendar.create(grid, {
        view: "timeGridWeek",
        date: grid.dataset.start,
        firstDay: 1,
        locale: grid.dataset.locale,
        allDayContent: grid.dataset.allDay,
        headerToolbar: { start: "", center: "", end: "" },
        slotMinTime: "07:00:00",
        slotMaxTime: "21:00:00",
        height: "auto",
        editable: false,
        selectable: false,
        events: week.events,
        eventClick: function (info) {
          var url = info.event.extendedProps.url;
          if (url) {
            window.location.href = url;
          }
        },
      });
      grid.classList.add("ready");
    })
    .catch(function () {
      grid.hidden = true;
    });
})();
