// Drawing a face box on the probe image: drag across the image to fill in the box's edges in the
// form below it (in the image's pixels), with the box shown as it is drawn. The form works
// without this script: the edges can be typed.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var svg = document.querySelector("[data-draw-surface]");
    var form = document.querySelector("[data-draw-form]");
    if (!svg || !form || !svg.getScreenCTM) {
      return;
    }
    var width = parseInt(form.getAttribute("data-width"), 10);
    var height = parseInt(form.getAttribute("data-height"), 10);
    var ns = "http://www.w3.org/2000/svg";
    var box = document.createElementNS(ns, "rect");
    box.setAttribute("fill", "none");
    box.setAttribute("stroke", "#00703c");
    box.setAttribute("stroke-width", String(Math.max(2, Math.round(width / 150))));
    box.setAttribute("stroke-dasharray", "4 2");
    box.setAttribute("visibility", "hidden");
    svg.appendChild(box);
    var start = null;

    function point(event) {
      var p = svg.createSVGPoint();
      p.x = event.clientX;
      p.y = event.clientY;
      var at = p.matrixTransform(svg.getScreenCTM().inverse());
      return {
        x: Math.min(width - 1, Math.max(0, Math.round(at.x))),
        y: Math.min(height - 1, Math.max(0, Math.round(at.y)))
      };
    }
    function show(a, b) {
      var left = Math.min(a.x, b.x), top = Math.min(a.y, b.y);
      var right = Math.max(a.x, b.x), bottom = Math.max(a.y, b.y);
      box.setAttribute("x", left);
      box.setAttribute("y", top);
      box.setAttribute("width", right - left + 1);
      box.setAttribute("height", bottom - top + 1);
      box.setAttribute("visibility", "visible");
      form.elements.left.value = left;
      form.elements.top.value = top;
      form.elements.right.value = right;
      form.elements.bottom.value = bottom;
    }
    svg.addEventListener("pointerdown", function (event) {
      start = point(event);
      svg.setPointerCapture(event.pointerId);
      event.preventDefault();
    });
    svg.addEventListener("pointermove", function (event) {
      if (start) {
        show(start, point(event));
      }
    });
    svg.addEventListener("pointerup", function (event) {
      if (start) {
        show(start, point(event));
        start = null;
        form.elements.draw_reason.focus();
      }
    });
  });
})();
