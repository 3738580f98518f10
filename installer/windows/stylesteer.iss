; Inno Setup script: the Windows installer around PyInstaller's dist\StyleSteer folder.
;   iscc /DAppVersion=0.1.0 installer\windows\stylesteer.iss      (from the repository root)
; Installs for the current user (no administrator rights) into %LOCALAPPDATA%\Programs\StyleSteer,
; with a Start-menu shortcut, an optional desktop shortcut and an uninstaller. The data folder
; (%LOCALAPPDATA%\StyleSteer: styles, converted models, autosaves) is kept on uninstall.
#ifndef AppVersion
  #error Pass /DAppVersion=X.Y.Z
#endif

[Setup]
AppId={{6F0D5E3A-2B7C-4C1E-9A7E-51E5D1A3C0B7}
AppName=StyleSteer
AppVersion={#AppVersion}
AppVerName=StyleSteer {#AppVersion}
AppPublisher=StyleSteer
VersionInfoVersion={#AppVersion}
DefaultDirName={localappdata}\Programs\StyleSteer
DefaultGroupName=StyleSteer
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=StyleSteer-{#AppVersion}-windows-x86_64-setup
SetupIconFile=..\..\build\icons\stylesteer.ico
UninstallDisplayIcon={app}\StyleSteer.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "..\..\dist\StyleSteer\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\StyleSteer"; Filename: "{app}\StyleSteer.exe"
Name: "{group}\Uninstall StyleSteer"; Filename: "{uninstallexe}"
Name: "{autodesktop}\StyleSteer"; Filename: "{app}\StyleSteer.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\StyleSteer.exe"; Description: "{cm:LaunchProgram,StyleSteer}"; Flags: nowait postinstall skipifsilent
