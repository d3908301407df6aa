// ECharts with what the wall's figures use (line and bar charts on a
// canvas), in a chunk of its own: figures.ts loads it with the first
// figures, after the map.
import { BarChart, LineChart } from 'echarts/charts';
import { GridComponent, LegendComponent, TooltipComponent } from 'echarts/components';
import * as echarts from 'echarts/core';
import { CanvasRenderer } from 'echarts/renderers';

echarts.use([BarChart, LineChart, GridComponent, LegendComponent, TooltipComponent, CanvasRenderer]);

export function chart(el: HTMLElement): echarts.ECharts {
  return echarts.init(el, undefined, { renderer: 'canvas' });
}
