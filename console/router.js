const listeners = new Set()

export function navigate (path) {
  history.pushState(null, '', path)
  for (const l of listeners) l(location.pathname)
}

export function onNavigate (listener) {
  const pop = () => listener(location.pathname)
  window.addEventListener('popstate', pop)
  listeners.add(listener)
  return () => { listeners.delete(listener); window.removeEventListener('popstate', pop) }
}
