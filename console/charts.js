import { html } from './html.js'
import { useEffect, useRef } from 'preact/hooks'
import uPlot from 'uplot'

/** A small time-series chart (uPlot) of per-second counts; `series` is [{label, values}], `times` in seconds. */
export function Chart ({ title, times, series }) {
  const el = useRef(null)
  const plot = useRef(null)
  useEffect(() => {
    const opts = {
      title, width: 380, height: 170,
      scales: { x: { time: true } },
      series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: ['#0b5cad', '#b3261e', '#c77700'][i % 3], width: 1.5 }))],
      axes: [{}, { size: 40 }]
    }
    plot.current = new uPlot(opts, [times, ...series.map((s) => s.values)], el.current)
    return () => plot.current.destroy()
  }, [])
  useEffect(() => { plot.current?.setData([times, ...series.map((s) => s.values)]) })
  return html`<div class="card" ref=${el}></div>`
}
